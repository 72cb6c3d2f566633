/* proc.c - /proc readers. Each call opens, reads and closes: a process can
 * vanish between two calls, and every reader then reports "gone". */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"
#include "tcp_table.h"

/* Reads /proc/PID/NAME into buf (NUL-terminated). Returns bytes or -1. */
static ssize_t read_proc(pid_t pid, const char *name, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = 0;
    return (ssize_t)n;
}

int64_t mc_proc_rss(pid_t pid)
{
    char buf[256];
    long long size, resident;
    if (read_proc(pid, "statm", buf, sizeof(buf)) <= 0) return -1;
    if (sscanf(buf, "%lld %lld", &size, &resident) != 2) return -1;
    return (int64_t)resident * sysconf(_SC_PAGESIZE);
}

int64_t mc_proc_fd_limit(pid_t pid)
{
    char buf[4096];
    if (read_proc(pid, "limits", buf, sizeof(buf)) <= 0) return -1;
    const char *l = strstr(buf, "Max open files");
    long long soft;
    if (!l || sscanf(l + strlen("Max open files"), " %lld", &soft) != 1) return -1;
    return soft;
}

/* The state letter and ppid follow the last ')' of /proc/PID/stat (the
 * command name itself may contain parentheses and spaces). */
static int stat_fields(pid_t pid, char *state, pid_t *ppid)
{
    char buf[1024];
    if (read_proc(pid, "stat", buf, sizeof(buf)) <= 0) return -1;
    char *p = strrchr(buf, ')');
    int pp;
    if (!p || sscanf(p + 1, " %c %d", state, &pp) != 2) return -1;
    *ppid = pp;
    return 0;
}

int mc_proc_alive(pid_t pid)
{
    char st;
    pid_t pp;
    if (stat_fields(pid, &st, &pp) != 0) return 0;
    return st != 'Z' && st != 'X';
}

int mc_proc_exiting(pid_t pid)
{
    char buf[1024];
    if (read_proc(pid, "stat", buf, sizeof(buf)) <= 0) return 1;
    char *p = strrchr(buf, ')');
    char st;
    int ppid, pgrp, sess, tty, tpgid;
    unsigned flags;
    if (!p ||
        sscanf(p + 1, " %c %d %d %d %d %d %u", &st, &ppid, &pgrp, &sess, &tty, &tpgid, &flags) != 7)
        return 1;
    return st == 'Z' || st == 'X' || (flags & 0x4) != 0; /* PF_EXITING */
}

pid_t mc_proc_ppid(pid_t pid)
{
    char st;
    pid_t pp;
    return stat_fields(pid, &st, &pp) == 0 ? pp : -1;
}

void mc_proc_comm(pid_t pid, char *buf, size_t len)
{
    if (read_proc(pid, "comm", buf, len) <= 0) {
        buf[0] = 0;
        return;
    }
    buf[strcspn(buf, "\n")] = 0;
}

/* Appends the children of pid (from /proc/PID/task/TID/children of each
 * of its threads) to out. Returns how many were added, -1 when the kernel
 * has no children files (CONFIG_PROC_CHILDREN off). */
static int children_of(pid_t pid, pid_t *out, int room)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d) return 0;
    int n = 0, seen_file = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char cpath[96];
        snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/children", (int)pid, de->d_name);
        FILE *f = fopen(cpath, "re");
        if (!f) continue;
        seen_file = 1;
        int c;
        while (fscanf(f, "%d", &c) == 1)
            if (n < room) out[n++] = c;
        fclose(f);
    }
    closedir(d);
    return seen_file ? n : -1;
}

/* Scans all of /proc for (pid, ppid) pairs: the fallback when children
 * files are missing. */
static int descendants_by_scan(pid_t root, pid_t *out, int max)
{
    enum { CAP = 32768 };
    static pid_t pids[CAP], ppids[CAP];
    int n = 0, found = 0;
    DIR *d = opendir("/proc");
    if (!d) return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < CAP) {
        char *end;
        long v = strtol(de->d_name, &end, 10);
        if (*end || v <= 0) continue;
        pid_t pp = mc_proc_ppid((pid_t)v);
        if (pp < 0) continue;
        pids[n] = (pid_t)v;
        ppids[n] = pp;
        n++;
    }
    closedir(d);
    pid_t queue[1024];
    int qh = 0, qt = 0;
    queue[qt++] = root;
    while (qh < qt) {
        pid_t parent = queue[qh++];
        for (int i = 0; i < n; i++) {
            if (ppids[i] != parent) continue;
            if (found < max) out[found] = pids[i];
            found++;
            if (qt < (int)(sizeof(queue) / sizeof(queue[0]))) queue[qt++] = pids[i];
        }
    }
    return found;
}

int mc_proc_descendants(pid_t root, pid_t *out, int max)
{
    /* Breadth-first over children files: costs a few reads per process of
     * the tree instead of one per process on the machine. */
    int found = 0, at = 0;
    int n = children_of(root, out, max);
    if (n < 0) return descendants_by_scan(root, out, max);
    found = n;
    while (at < found && found < max) {
        n = children_of(out[at++], out + found, max - found);
        if (n > 0) found += n;
    }
    return found;
}

/* ---- descriptors, sockets, threads ---- */

#define MAX_SOCK 65536

static int cmp_ulong(const void *a, const void *b)
{
    unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
    return (x > y) - (x < y);
}

/* Whether a port lies in the kernel's range for outgoing connections:
 * such a peer is a client that connected to us, whose TIME_WAIT sits on our
 * listening port already; matching by its address:port would also catch
 * unrelated connections that happen to reuse the number. */
static int ephemeral(unsigned long port)
{
    static unsigned long lo, hi;
    if (!hi) {
        FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
        if (!f || fscanf(f, "%lu %lu", &lo, &hi) != 2) {
            lo = 32768;
            hi = 60999;
        }
        if (f) fclose(f);
    }
    return port >= lo && port <= hi;
}

static const char *tcp_state_name(int st)
{
    static const char *names[] = {"?",          "ESTABLISHED", "SYN_SENT",  "SYN_RECV",
                                  "FIN_WAIT1",  "FIN_WAIT2",   "TIME_WAIT", "CLOSE",
                                  "CLOSE_WAIT", "LAST_ACK",    "LISTEN",    "CLOSING"};
    return st > 0 && st < (int)(sizeof(names) / sizeof(names[0])) ? names[st] : "?";
}

/* A socket's group: peer address, peer port unless ephemeral, state. */
struct peer_ref {
    unsigned long key;
    int idx;
};

static int cmp_peer_ref(const void *a, const void *b)
{
    const struct peer_ref *x = a, *y = b;
    return (x->key > y->key) - (x->key < y->key);
}

/* Fills r->peers with the largest groups among the sockets in refs. */
static void top_peers(struct mc_proc_res *r, struct peer_ref *refs, int n,
                      const struct mc_tcp_entry *tcp)
{
    qsort(refs, (size_t)n, sizeof(refs[0]), cmp_peer_ref);
    for (int i = 0; i < n;) {
        int j = i;
        while (j < n && refs[j].key == refs[i].key)
            j++;
        int count = j - i, at = r->npeers;
        if (at == MC_PEERS && count <= r->peers[MC_PEERS - 1].count) {
            i = j;
            continue;
        }
        if (at == MC_PEERS) at = MC_PEERS - 1;
        while (at > 0 && r->peers[at - 1].count < count) {
            if (at < MC_PEERS) r->peers[at] = r->peers[at - 1];
            at--;
        }
        const struct mc_tcp_entry *t = &tcp[refs[i].idx];
        char a[INET6_ADDRSTRLEN] = "?";
        inet_ntop(t->family, t->raddr, a, sizeof(a));
        struct mc_peer *p = &r->peers[at];
        if (ephemeral(t->rport))
            snprintf(p->addr, sizeof(p->addr), t->family == AF_INET6 ? "[%s]:*" : "%s:*", a);
        else
            snprintf(p->addr, sizeof(p->addr), t->family == AF_INET6 ? "[%s]:%lu" : "%s:%lu", a,
                     t->rport);
        snprintf(p->state, sizeof(p->state), "%s", tcp_state_name(t->state));
        p->count = count;
        if (r->npeers < MC_PEERS) r->npeers++;
        i = j;
    }
}

static void sock_part(struct mc_proc_res *r, pid_t pid, unsigned long *inodes, int ni,
                      struct mc_tcp_table *tab);

int mc_proc_resources(pid_t pid, struct mc_proc_res *r, struct mc_tcp_table *tab)
{
    static unsigned long inodes[MAX_SOCK];
    char path[64];
    memset(r, 0, sizeof(*r));
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    int ni = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        r->fds++;
        char link[64], target[128];
        snprintf(link, sizeof(link), "/proc/%d/fd/%s", (int)pid, de->d_name);
        ssize_t l = readlink(link, target, sizeof(target) - 1);
        if (l <= 0) continue;
        target[l] = 0;
        unsigned long ino;
        if (sscanf(target, "socket:[%lu]", &ino) == 1) {
            r->sockets++;
            if (ni < MAX_SOCK) inodes[ni++] = ino;
        }
    }
    closedir(d);
    char status[4096];
    if (read_proc(pid, "status", status, sizeof(status)) > 0) {
        const char *t = strstr(status, "\nThreads:");
        if (t) r->threads = atoi(t + 9);
    }
    if (!ni || !tab) return 0; /* no table: no memory for one, states unknown */
    sock_part(r, pid, inodes, ni, tab);
    return 0;
}

/* The socket part of mc_proc_resources: the TCP sockets among inodes (ni
 * of them) by state, their top peers and the TIME_WAITs that are pid's:
 * on its listening ports, or towards its peers' ports and addresses. */
static void sock_part(struct mc_proc_res *r, pid_t pid, unsigned long *inodes, int ni,
                      struct mc_tcp_table *tab)
{
    static struct peer_ref refs[MAX_SOCK];
    static unsigned long ports[MAX_SOCK], peers[MAX_SOCK];
    static struct mc_tcp_entry tcp[MAX_SOCK];
    qsort(inodes, (size_t)ni, sizeof(inodes[0]), cmp_ulong);
    int nt = mc_tcp_table_get(tab, pid, inodes, ni, tcp, MAX_SOCK);
    /* The ports to count TIME_WAITs on; one past the filter's room makes
     * the table take them all. */
    struct mc_tcp_port want[MC_TCP_TW_PORTS + 1];
    int np = 0, nr = 0, nref = 0, nwant = 0;
    for (int i = 0; i < nt; i++) {
        const struct mc_tcp_entry *t = &tcp[i];
        switch (t->state) {
        case 0x01:
            r->tcp_est++;
            break;
        case 0x08:
            r->tcp_close_wait++;
            break;
        case 0x0A:
            r->tcp_listen++;
            ports[np++] = t->lport;
            break;
        default:
            r->tcp_other++;
        }
        int listen = t->state == 0x0A, eph = ephemeral(t->rport);
        if (listen || !eph) {
            struct mc_tcp_port w = {(unsigned short)(listen ? t->lport : t->rport), !listen};
            int k = 0;
            while (k < nwant && (want[k].port != w.port || want[k].remote != w.remote))
                k++;
            if (k == nwant && nwant <= MC_TCP_TW_PORTS) want[nwant++] = w;
        }
        if (listen) continue;
        if (!eph) peers[nr++] = t->peer;
        uint64_t k = mc_tcp_hash(t->raddr, 16, MC_FNV_SEED);
        unsigned long port = eph ? 0 : t->rport;
        k = mc_tcp_hash(&port, sizeof(port), k);
        refs[nref].key = mc_tcp_hash(&t->state, sizeof(int), k);
        refs[nref++].idx = i;
    }
    top_peers(r, refs, nref, tcp);
    qsort(ports, (size_t)np, sizeof(ports[0]), cmp_ulong);
    qsort(peers, (size_t)nr, sizeof(peers[0]), cmp_ulong);
    if (!np && !nr) return;
    mc_tcp_table_want(tab, want, nwant);
    const unsigned long *tw_port, *tw_peer;
    int ntw = mc_tcp_table_tw(tab, &tw_port, &tw_peer);
    for (int i = 0; i < ntw; i++)
        r->time_wait += bsearch(&tw_port[i], ports, (size_t)np, sizeof(ports[0]), cmp_ulong) ||
                        bsearch(&tw_peer[i], peers, (size_t)nr, sizeof(peers[0]), cmp_ulong);
}
