/* proc.c - /proc readers. Each call opens, reads and closes: a process can
 * vanish between two calls, and every reader then reports "gone". */
#include <arpa/inet.h>
#include <dirent.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
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

/* One TCP socket of the machine: the state, the inode that ties it to a
 * process (0 for TIME_WAIT, which no process owns), its local port and
 * its peer as a key (address and port hashed). */
struct tcp_entry {
    unsigned long inode;
    int state;
    unsigned long lport, rport;
    unsigned long peer;
    int family; /* AF_INET or AF_INET6 */
    unsigned char raddr[16];
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

static int cmp_ulong(const void *a, const void *b)
{
    unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
    return (x > y) - (x < y);
}

/* Where the machine's TCP table goes while it is read: the process's own
 * sockets (inode in its sorted set) in full, TIME_WAIT entries (owned by
 * nobody, possibly a hundred thousand) as local port and peer key only;
 * everything else is dropped as it comes. */
struct tcp_sink {
    const unsigned long *inodes;
    int ni;
    struct tcp_entry *own;
    int nown, max;
    unsigned long *tw_port, *tw_peer;
    int ntw, twcap;
};

#define TCP_TW   6  /* TCP_TIME_WAIT in the kernel's state numbers */
#define BC_PORTS 24 /* ports in one kernel filter: 24 tests of 8 bytes */
#define BC_MAX   (BC_PORTS * 8)

static void sink_add(struct tcp_sink *s, const struct tcp_entry *t)
{
    if (t->inode && bsearch(&t->inode, s->inodes, (size_t)s->ni, sizeof(s->inodes[0]), cmp_ulong)) {
        if (s->nown < s->max) s->own[s->nown++] = *t;
        return;
    }
    if (t->state != 0x06) return;
    if (s->ntw == s->twcap) {
        int cap = s->twcap ? s->twcap * 2 : 4096;
        unsigned long *a = realloc(s->tw_port, (size_t)cap * sizeof(*a));
        if (!a) return;
        s->tw_port = a;
        unsigned long *b = realloc(s->tw_peer, (size_t)cap * sizeof(*b));
        if (!b) return;
        s->tw_peer = b;
        s->twcap = cap;
    }
    s->tw_port[s->ntw] = t->lport;
    s->tw_peer[s->ntw++] = t->peer;
}

/* A filter for the kernel (inet_diag bytecode, linux/inet_diag.h): keep a
 * socket when its local port is one of sports or its remote port one of
 * dports. Each test is two 4-byte ops (the test, then the port in `no`);
 * a match jumps to the end (accept), a miss to the next test, and the last
 * miss past the end (reject), as inet_diag_bc_run reads them. Returns the
 * bytes written to bc (room for 2 * (ns + nd) ops, ns + nd <= BC_PORTS). */
static int port_filter(struct inet_diag_bc_op *bc, const unsigned long *sports, int ns,
                       const unsigned long *dports, int nd)
{
    int n = ns + nd, len = n * 8; /* at most BC_MAX: `yes` fits its byte */
    for (int i = 0; i < n; i++) {
        int left = len - i * 8;
        bc[2 * i].code = i < ns ? INET_DIAG_BC_S_EQ : INET_DIAG_BC_D_EQ;
        bc[2 * i].yes = (unsigned char)left;
        bc[2 * i].no = (unsigned short)(i + 1 < n ? 8 : left + 4);
        bc[2 * i + 1].code = 0;
        bc[2 * i + 1].yes = 0;
        bc[2 * i + 1].no = (unsigned short)(i < ns ? sports[i] : dports[i - ns]);
    }
    return len;
}

/* Reads the TCP sockets of the caller's network namespace in the states
 * of the mask (1 << TCP_* state), through NETLINK_SOCK_DIAG, with the
 * kernel filter bc (bclen bytes, 0 for none). Preferred to /proc/net/tcp:
 * the kernel formats no text. A busy machine's table holds tens of
 * thousands of TIME_WAITs, and filling a message for each costs the
 * kernel milliseconds per read: they are asked for apart, and only those
 * on the ports of this process (mc_proc_resources). Returns the count,
 * or -1 when netlink is not available. */
static int read_tcp_diag(struct tcp_sink *sk, unsigned states, const void *bc, int bclen)
{
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) return -1;
    int n = 0, rc = -1;
    static char buf[64 * 1024] __attribute__((aligned(8)));
    for (int fam = 0; fam < 2; fam++) {
        struct {
            struct nlmsghdr nh;
            struct inet_diag_req_v2 r;
            struct rtattr rta;
            char bc[BC_MAX];
        } req = {.nh = {.nlmsg_len = NLMSG_LENGTH(sizeof(req.r)),
                        .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                        .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
                 .r = {.sdiag_family = fam ? AF_INET6 : AF_INET,
                       .sdiag_protocol = IPPROTO_TCP,
                       .idiag_states = states}};
        if (bclen > 0 && bclen <= BC_MAX) {
            req.rta.rta_type = INET_DIAG_REQ_BYTECODE;
            req.rta.rta_len = (unsigned short)RTA_LENGTH(bclen);
            memcpy(req.bc, bc, (size_t)bclen);
            req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(req.rta.rta_len);
        }
        struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
        if (sendto(fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) goto out;
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
                struct tcp_entry te, *t = &te;
                n++;
                t->inode = m->idiag_inode;
                t->state = m->idiag_state;
                t->lport = ntohs(m->id.idiag_sport);
                t->rport = ntohs(m->id.idiag_dport);
                t->family = m->idiag_family;
                memset(t->raddr, 0, sizeof(t->raddr));
                memcpy(t->raddr, m->id.idiag_dst, fam ? 16 : 4);
                uint64_t k = hash_bytes(&m->idiag_family, 1, FNV_SEED);
                k = hash_bytes(m->id.idiag_dst, fam ? 16 : 4, k);
                t->peer = hash_bytes(&m->id.idiag_dport, 2, k);
                sink_add(sk, t);
            }
        }
    }
    rc = n;
out:
    close(fd);
    return rc;
}

/* The same from /proc/PID/net/tcp and tcp6, when netlink is refused. */
static int read_tcp_proc(pid_t pid, struct tcp_sink *sk)
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
        while (fgets(line, sizeof(line), fp)) {
            struct tcp_entry te, *t = &te;
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
            /* The address is printed as 32-bit words in host order. */
            t->family = f ? AF_INET6 : AF_INET;
            memset(t->raddr, 0, sizeof(t->raddr));
            for (int w = 0; w < (f ? 4 : 1); w++) {
                char word[9] = {0};
                memcpy(word, remote + 8 * w, 8);
                uint32_t v = (uint32_t)strtoul(word, NULL, 16);
                memcpy(t->raddr + 4 * w, &v, 4);
            }
            t->peer = hash_bytes(remote, strlen(remote), FNV_SEED);
            sink_add(sk, t);
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
                      const struct tcp_entry *tcp)
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
        const struct tcp_entry *t = &tcp[refs[i].idx];
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

static void sock_part(struct mc_proc_res *r, pid_t pid, unsigned long *inodes, int ni);

int mc_proc_resources(pid_t pid, struct mc_proc_res *r)
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
    if (!ni) return 0;
    sock_part(r, pid, inodes, ni);
    return 0;
}

/* The socket part of mc_proc_resources: the TCP sockets among inodes (ni
 * of them) by state, their top peers and the TIME_WAITs that are pid's. */
static void sock_part(struct mc_proc_res *r, pid_t pid, unsigned long *inodes, int ni)
{
    static struct peer_ref refs[MAX_SOCK];
    static unsigned long ports[MAX_SOCK], peers[MAX_SOCK];
    static struct tcp_entry tcp[MAX_SOCK];
    qsort(inodes, (size_t)ni, sizeof(inodes[0]), cmp_ulong);
    /* The TIME_WAIT lists are kept between calls (grown as needed). */
    static struct tcp_sink sk;
    sk.inodes = inodes;
    sk.ni = ni;
    sk.own = tcp;
    sk.max = MAX_SOCK;
    sk.nown = sk.ntw = 0;
    int diag = read_tcp_diag(&sk, ~(1u << TCP_TW), NULL, 0) >= 0;
    if (!diag) {
        sk.nown = sk.ntw = 0;
        read_tcp_proc(pid, &sk);
    }
    int nt = sk.nown;
    /* Listening ports and peers of this process, to find its TIME_WAITs. */
    int np = 0, nr = 0, nref = 0;
    for (int i = 0; i < nt; i++) {
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
        uint64_t k = hash_bytes(tcp[i].raddr, 16, FNV_SEED);
        unsigned long port = ephemeral(tcp[i].rport) ? 0 : tcp[i].rport;
        k = hash_bytes(&port, sizeof(port), k);
        refs[nref].key = hash_bytes(&tcp[i].state, sizeof(int), k);
        refs[nref++].idx = i;
    }
    top_peers(r, refs, nref, tcp);
    qsort(ports, (size_t)np, sizeof(ports[0]), cmp_ulong);
    qsort(peers, (size_t)nr, sizeof(peers[0]), cmp_ulong);
    if (diag && (np || nr)) {
        /* The TIME_WAITs on this process' listening ports or to its peers'
         * ports: the kernel sends only those (all of them when the ports
         * do not fit a filter); the peers' addresses are told apart below. */
        static unsigned long rports[BC_PORTS];
        static struct inet_diag_bc_op bc[BC_MAX / sizeof(struct inet_diag_bc_op)];
        int nrp = 0;
        for (int i = 0; i < nt && nrp < BC_PORTS; i++) {
            if (tcp[i].state == 0x0A || ephemeral(tcp[i].rport)) continue;
            int seen = 0;
            for (int k = 0; k < nrp && !seen; k++)
                seen = rports[k] == tcp[i].rport;
            if (!seen) rports[nrp++] = tcp[i].rport;
        }
        int len = np + nrp < BC_PORTS ? port_filter(bc, ports, np, rports, nrp) : 0;
        read_tcp_diag(&sk, 1u << TCP_TW, bc, len);
    }
    for (int i = 0; i < sk.ntw; i++)
        r->time_wait += bsearch(&sk.tw_port[i], ports, (size_t)np, sizeof(ports[0]), cmp_ulong) ||
                        bsearch(&sk.tw_peer[i], peers, (size_t)nr, sizeof(peers[0]), cmp_ulong);
}
