/* proc.c - /proc readers. Each call opens, reads and closes: a process can
 * vanish between two calls, and every reader then reports "gone". */
#include <arpa/inet.h>
#include <dirent.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

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

/* One TCP socket of the machine: the state, the inode that ties it to a
 * process (0 for TIME_WAIT, which no process owns), its local port and
 * its peer as a key (address and port hashed). */
struct tcp_entry {
    unsigned long inode;
    int state;
    unsigned long lport, rport;
    unsigned long peer;
};

/* FNV-1a over bytes: peers are compared as 64-bit keys, so that matching
 * tens of thousands of TIME_WAIT entries against hundreds of peers is a
 * binary search each. */
static unsigned long hash_bytes(const void *p, size_t n, uint64_t h)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211ull;
    return (unsigned long)h;
}

#define FNV_SEED 1469598103934665603ull

/* Reads every TCP socket of the caller's network namespace through
 * NETLINK_SOCK_DIAG. Preferred to /proc/net/tcp: the kernel formats no
 * text and a busy machine's table (tens of thousands of TIME_WAITs) comes
 * in a few milliseconds instead of a good part of a second. Returns the
 * count, or -1 when netlink is not available. */
static int read_tcp_diag(struct tcp_entry *e, int max)
{
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) return -1;
    int n = 0, rc = -1;
    static char buf[64 * 1024] __attribute__((aligned(8)));
    for (int fam = 0; fam < 2; fam++) {
        struct {
            struct nlmsghdr nh;
            struct inet_diag_req_v2 r;
        } req = {.nh = {.nlmsg_len = sizeof(req),
                        .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                        .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
                 .r = {.sdiag_family = fam ? AF_INET6 : AF_INET,
                       .sdiag_protocol = IPPROTO_TCP,
                       .idiag_states = ~0u}};
        struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
        if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) goto out;
        for (int done = 0; !done;) {
            ssize_t got = recv(fd, buf, sizeof(buf), 0);
            if (got <= 0) goto out;
            for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)got);
                 h = NLMSG_NEXT(h, got)) {
                if (h->nlmsg_type == NLMSG_DONE) {
                    done = 1;
                    break;
                }
                if (h->nlmsg_type == NLMSG_ERROR) goto out;
                const struct inet_diag_msg *m = NLMSG_DATA(h);
                if (n >= max) continue;
                struct tcp_entry *t = &e[n++];
                t->inode = m->idiag_inode;
                t->state = m->idiag_state;
                t->lport = ntohs(m->id.idiag_sport);
                t->rport = ntohs(m->id.idiag_dport);
                uint64_t k = hash_bytes(&m->idiag_family, 1, FNV_SEED);
                k = hash_bytes(m->id.idiag_dst, fam ? 16 : 4, k);
                t->peer = hash_bytes(&m->id.idiag_dport, 2, k);
            }
        }
    }
    rc = n;
out:
    close(fd);
    return rc;
}

/* The same from /proc/PID/net/tcp and tcp6, when netlink is refused. */
static int read_tcp_proc(pid_t pid, struct tcp_entry *e, int max)
{
    int n = 0;
    const char *files[] = {"net/tcp", "net/tcp6"};
    for (int f = 0; f < 2; f++) {
        char path[64], line[512], local[48], remote[48];
        snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, files[f]);
        FILE *fp = fopen(path, "re");
        if (!fp) continue;
        if (!fgets(line, sizeof(line), fp)) { /* header */
            fclose(fp);
            continue;
        }
        while (n < max && fgets(line, sizeof(line), fp)) {
            struct tcp_entry *t = &e[n];
            unsigned st;
            /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
            if (sscanf(line, " %*d: %47s %47s %x %*s %*s %*s %*d %*d %lu", local, remote, &st,
                       &t->inode) != 4)
                continue;
            t->state = (int)st;
            const char *c = strrchr(local, ':');
            t->lport = c ? strtoul(c + 1, NULL, 16) : 0;
            c = strrchr(remote, ':');
            t->rport = c ? strtoul(c + 1, NULL, 16) : 0;
            t->peer = hash_bytes(remote, strlen(remote), FNV_SEED);
            n++;
        }
        fclose(fp);
    }
    return n;
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

static int cmp_ulong(const void *a, const void *b)
{
    unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
    return (x > y) - (x < y);
}

int mc_proc_resources(pid_t pid, struct mc_proc_res *r)
{
    static unsigned long inodes[MAX_SOCK], ports[MAX_SOCK], peers[MAX_SOCK];
    static struct tcp_entry tcp[MAX_SOCK];
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
    if (!ni) return 0;
    qsort(inodes, (size_t)ni, sizeof(inodes[0]), cmp_ulong);
    int nt = read_tcp_diag(tcp, MAX_SOCK);
    if (nt < 0) nt = read_tcp_proc(pid, tcp, MAX_SOCK);
    /* Listening ports and peers of this process, to find its TIME_WAITs. */
    int np = 0, nr = 0;
    for (int i = 0; i < nt; i++) {
        if (!tcp[i].inode ||
            !bsearch(&tcp[i].inode, inodes, (size_t)ni, sizeof(inodes[0]), cmp_ulong))
            continue;
        switch (tcp[i].state) {
        case 0x01:
            r->tcp_est++;
            break;
        case 0x08:
            r->tcp_close_wait++;
            break;
        case 0x0A:
            r->tcp_listen++;
            ports[np++] = tcp[i].lport;
            continue;
        default:
            r->tcp_other++;
        }
        if (!ephemeral(tcp[i].rport)) peers[nr++] = tcp[i].peer;
    }
    qsort(ports, (size_t)np, sizeof(ports[0]), cmp_ulong);
    qsort(peers, (size_t)nr, sizeof(peers[0]), cmp_ulong);
    for (int i = 0; i < nt; i++) {
        if (tcp[i].state != 0x06) continue;
        unsigned long port = tcp[i].lport, peer = tcp[i].peer;
        r->time_wait += bsearch(&port, ports, (size_t)np, sizeof(ports[0]), cmp_ulong) ||
                        bsearch(&peer, peers, (size_t)nr, sizeof(peers[0]), cmp_ulong);
    }
    return 0;
}
