/* tcp_table.c - the machine's TCP table, read once per sample.
 *
 * A busy machine's table holds tens of thousands of TIME_WAITs (a client
 * that opens a connection per request leaves one each, for 60 s), and the
 * kernel walks all of them at every dump whatever the filter: ~0.2 us
 * each, a cache miss, so 120k of them cost ~20 ms per walk. Read per
 * process, per family and per state set, that was 8 walks per sample of
 * nginx's master and worker at 20 samples a second: most of a core. Here
 * one walk serves every process of a sample: both families in one request
 * (TCPDIAG_GETSOCK asks with AF_UNSPEC), the sockets processes own in full,
 * and of the TIME_WAITs only those on the ports the processes asked for at
 * the previous sample, picked by a kernel filter. A second, TIME_WAIT-only
 * walk happens when a process asks for a port not in that set (its first
 * sample, a new listening port). */
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tcp_table.h"

/* A filter: a 12-byte cgroup test, then 12 bytes per port. */
#define BC_MAX (12 + MC_TCP_TW_PORTS * 12)

struct mc_tcp_table {
    int stale;     /* read again at the next mc_tcp_table_get */
    int diag;      /* netlink answered; else /proc/PID/net/tcp per process */
    int no_cgroup; /* the kernel refused INET_DIAG_BC_CGROUP_COND */
    struct mc_tcp_entry *own;
    int nown, owncap;
    unsigned long *tw_port, *tw_peer;
    int ntw, twcap;
    /* The ports whose TIME_WAITs the table holds (every TIME_WAIT when
     * tw_all), and those asked for at this sample: the next one's set. */
    struct mc_tcp_port covered[MC_TCP_TW_PORTS], asked[MC_TCP_TW_PORTS];
    int ncovered, nasked, tw_all, asked_all;
};

unsigned long mc_tcp_hash(const void *p, size_t n, unsigned long long h)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211ull;
    return (unsigned long)h;
}

struct mc_tcp_table *mc_tcp_table_new(void)
{
    struct mc_tcp_table *t = calloc(1, sizeof(*t));
    if (t) t->stale = 1;
    return t;
}

void mc_tcp_table_free(struct mc_tcp_table *t)
{
    if (!t) return;
    free(t->own);
    free(t->tw_port);
    free(t->tw_peer);
    free(t);
}

void mc_tcp_table_expire(struct mc_tcp_table *t)
{
    if (t) t->stale = 1;
}

/* Appends e to the table: to the owned sockets when it has an inode, to
 * the TIME_WAITs when it is one; anything else is dropped. Returns -1
 * without memory (the entry is lost, the table stays whole). */
static int add_entry(struct mc_tcp_table *t, const struct mc_tcp_entry *e)
{
    if (e->inode) {
        if (t->nown == t->owncap) {
            int cap = t->owncap ? t->owncap * 2 : 1024;
            struct mc_tcp_entry *a = realloc(t->own, (size_t)cap * sizeof(*a));
            if (!a) return -1;
            t->own = a;
            t->owncap = cap;
        }
        t->own[t->nown++] = *e;
        return 0;
    }
    if (e->state != MC_TCP_TW) return 0;
    if (t->ntw == t->twcap) {
        int cap = t->twcap ? t->twcap * 2 : 4096;
        unsigned long *a = realloc(t->tw_port, (size_t)cap * sizeof(*a));
        if (!a) return -1;
        t->tw_port = a;
        unsigned long *b = realloc(t->tw_peer, (size_t)cap * sizeof(*b));
        if (!b) return -1;
        t->tw_peer = b;
        t->twcap = cap;
    }
    t->tw_port[t->ntw] = e->lport;
    t->tw_peer[t->ntw++] = e->peer;
    return 0;
}

/* Whether port p of a socket (local lport, remote rport) is in set. */
static int port_in(const struct mc_tcp_port *set, int n, unsigned long lport, unsigned long rport)
{
    for (int i = 0; i < n; i++)
        if (set[i].port == (set[i].remote ? rport : lport)) return 1;
    return 0;
}

/* Writes a filter for the kernel (inet_diag bytecode, linux/inet_diag.h).
 * inet_diag_bc_run moves on from each op by `yes` bytes when its test
 * holds and by `no` when not; ending exactly at the end accepts, past it
 * rejects. inet_diag_bc_audit refuses a `no` that lands where no chain of
 * `yes` from the start lands, so each test's `yes` goes to the next op
 * and a JMP (which always takes `no`) carries a match to the end:
 *
 *   [cgroup id == 0?  yes: on, no: accept]        with full: every full
 *   [port test i      yes: JMP_i, no: test i+1]   socket has a cgroup id,
 *   [JMP_i            no: accept]                 TIME_WAITs have 0
 *   ...
 *   [last test        no: past the end: reject]
 *
 * A port test is an op and the port in the `no` of a second op; ports
 * holds n (1..MC_TCP_TW_PORTS) local or remote ports. Returns the bytes
 * written. */
static int port_filter(unsigned char *bc, const struct mc_tcp_port *ports, int n, int full)
{
    int at = 0, len = (full ? 12 : 0) + n * 12;
    if (full) {
        struct inet_diag_bc_op op = {INET_DIAG_BC_CGROUP_COND, 12, (unsigned short)len};
        uint64_t none = 0;
        memcpy(bc, &op, sizeof(op));
        memcpy(bc + 4, &none, sizeof(none));
        at = 12;
    }
    for (int i = 0; i < n; i++, at += 12) {
        int left = len - at; /* from this test to the end */
        struct inet_diag_bc_op op[3] = {{ports[i].remote ? INET_DIAG_BC_D_EQ : INET_DIAG_BC_S_EQ, 8,
                                         (unsigned short)(i + 1 < n ? 12 : left + 4)},
                                        {0, 0, ports[i].port},
                                        {INET_DIAG_BC_JMP, 4, (unsigned short)(left - 8)}};
        memcpy(bc + at, op, sizeof(op));
    }
    return len;
}

/* One dump of the TCP sockets of the caller's network namespace, both
 * families, in the states of the mask (1 << state), through the kernel
 * filter bc (bclen bytes, 0 for none), appended to the table; TIME_WAITs
 * on a port of skip (nskip) are left out (already in it). Preferred to
 * /proc/net/tcp: the kernel formats no text. Returns the count, -1 when
 * netlink is not available, -2 when the kernel refused the request. */
static int dump(struct mc_tcp_table *t, unsigned states, const void *bc, int bclen,
                const struct mc_tcp_port *skip, int nskip)
{
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) return -1;
    static char buf[64 * 1024] __attribute__((aligned(8)));
    struct {
        struct nlmsghdr nh;
        struct inet_diag_req r;
        struct rtattr rta;
        unsigned char bc[BC_MAX];
    } req = {.nh = {.nlmsg_len = NLMSG_LENGTH(sizeof(req.r)),
                    .nlmsg_type = TCPDIAG_GETSOCK,
                    .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
             .r = {.idiag_family = AF_INET, .idiag_states = states}};
    if (bclen > 0 && bclen <= BC_MAX) {
        req.rta.rta_type = INET_DIAG_REQ_BYTECODE;
        req.rta.rta_len = (unsigned short)RTA_LENGTH(bclen);
        memcpy(req.bc, bc, (size_t)bclen);
        req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(req.rta.rta_len);
    }
    int n = 0, rc = -1;
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
            if (h->nlmsg_type == NLMSG_ERROR) {
                rc = -2;
                goto out;
            }
            const struct inet_diag_msg *m = NLMSG_DATA(h);
            int v6 = m->idiag_family == AF_INET6;
            struct mc_tcp_entry e = {.inode = m->idiag_inode,
                                     .state = m->idiag_state,
                                     .lport = ntohs(m->id.idiag_sport),
                                     .rport = ntohs(m->id.idiag_dport),
                                     .family = m->idiag_family};
            memcpy(e.raddr, m->id.idiag_dst, v6 ? 16 : 4);
            unsigned long k = mc_tcp_hash(&m->idiag_family, 1, MC_FNV_SEED);
            k = mc_tcp_hash(m->id.idiag_dst, v6 ? 16 : 4, k);
            e.peer = mc_tcp_hash(&m->id.idiag_dport, 2, k);
            n++;
            if (!e.inode && nskip && port_in(skip, nskip, e.lport, e.rport)) continue;
            add_entry(t, &e);
        }
    }
    rc = n;
out:
    close(fd);
    return rc;
}

/* The same from /proc/PID/net/tcp and tcp6 (pid's namespace), when
 * netlink is refused: everything, TIME_WAITs included. */
static void read_proc_tcp(struct mc_tcp_table *t, pid_t pid)
{
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
            struct mc_tcp_entry e = {.family = f ? AF_INET6 : AF_INET};
            unsigned st;
            /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
            if (sscanf(line, " %*d: %47s %47s %x %*s %*s %*s %*d %*d %lu", local, remote, &st,
                       &e.inode) != 4)
                continue;
            e.state = (int)st;
            const char *c = strrchr(local, ':');
            e.lport = c ? strtoul(c + 1, NULL, 16) : 0;
            c = strrchr(remote, ':');
            e.rport = c ? strtoul(c + 1, NULL, 16) : 0;
            /* The address is printed as 32-bit words in host order. */
            for (int w = 0; w < (f ? 4 : 1); w++) {
                char word[9] = {0};
                memcpy(word, remote + 8 * w, 8);
                uint32_t v = (uint32_t)strtoul(word, NULL, 16);
                memcpy(e.raddr + 4 * w, &v, 4);
            }
            e.peer = mc_tcp_hash(remote, strlen(remote), MC_FNV_SEED);
            add_entry(t, &e);
        }
        fclose(fp);
    }
}

static int cmp_inode(const void *a, const void *b)
{
    const struct mc_tcp_entry *x = a, *y = b;
    return (x->inode > y->inode) - (x->inode < y->inode);
}

/* Reads the kernel's table: one walk with the filter of the ports asked
 * for at the previous sample (two where the kernel has no cgroup test). */
static void read_table(struct mc_tcp_table *t)
{
    t->stale = 0;
    t->nown = t->ntw = 0;
    memcpy(t->covered, t->asked, sizeof(t->asked));
    t->ncovered = t->nasked;
    t->tw_all = t->asked_all;
    t->nasked = t->asked_all = 0;
    unsigned char bc[BC_MAX];
    int rc = -2;
    if (t->tw_all)
        rc = dump(t, ~0u, NULL, 0, NULL, 0);
    else if (t->ncovered && !t->no_cgroup) {
        rc = dump(t, ~0u, bc, port_filter(bc, t->covered, t->ncovered, 1), NULL, 0);
        if (rc == -2) { /* before Linux 5.10, or without CONFIG_SOCK_CGROUP_DATA */
            t->no_cgroup = 1;
            t->nown = t->ntw = 0;
        }
    }
    if (rc == -2) {
        rc = dump(t, ~(1u << MC_TCP_TW), NULL, 0, NULL, 0);
        if (rc >= 0 && t->ncovered)
            dump(t, 1u << MC_TCP_TW, bc, port_filter(bc, t->covered, t->ncovered, 0), NULL, 0);
    }
    t->diag = rc >= 0;
    if (t->diag) qsort(t->own, (size_t)t->nown, sizeof(t->own[0]), cmp_inode);
}

int mc_tcp_table_get(struct mc_tcp_table *t, pid_t pid, const unsigned long *inodes, int ni,
                     struct mc_tcp_entry *own, int max)
{
    if (t->stale) read_table(t);
    if (!t->diag) { /* per process: its own namespace's file */
        t->nown = t->ntw = 0;
        read_proc_tcp(t, pid);
        qsort(t->own, (size_t)t->nown, sizeof(t->own[0]), cmp_inode);
    }
    /* Both lists are sorted: one merge. */
    int n = 0;
    for (int i = 0, j = 0; i < ni && j < t->nown && n < max;) {
        if (inodes[i] < t->own[j].inode)
            i++;
        else if (inodes[i] > t->own[j].inode)
            j++;
        else {
            own[n++] = t->own[j++];
            i++;
        }
    }
    return n;
}

void mc_tcp_table_want(struct mc_tcp_table *t, const struct mc_tcp_port *want, int n)
{
    if (!t->diag) return; /* read_proc_tcp took every TIME_WAIT */
    struct mc_tcp_port miss[MC_TCP_TW_PORTS];
    int nmiss = 0, overflow = 0;
    for (int i = 0; i < n; i++) {
        const struct mc_tcp_port *p = &want[i];
        int k = 0;
        while (k < t->nasked && (t->asked[k].port != p->port || t->asked[k].remote != p->remote))
            k++;
        if (k == t->nasked) {
            if (t->nasked < MC_TCP_TW_PORTS)
                t->asked[t->nasked++] = *p;
            else
                t->asked_all = 1;
        }
        if (t->tw_all) continue;
        k = 0;
        while (k < t->ncovered &&
               (t->covered[k].port != p->port || t->covered[k].remote != p->remote))
            k++;
        if (k < t->ncovered) continue;
        for (k = 0; k < nmiss && (miss[k].port != p->port || miss[k].remote != p->remote);)
            k++;
        if (k < nmiss) continue;
        if (nmiss < MC_TCP_TW_PORTS)
            miss[nmiss++] = *p;
        else
            overflow = 1;
    }
    if (!nmiss && !overflow) return;
    unsigned char bc[BC_MAX];
    if (overflow || t->ncovered + nmiss > MC_TCP_TW_PORTS) {
        dump(t, 1u << MC_TCP_TW, NULL, 0, t->covered, t->ncovered);
        t->tw_all = 1;
        return;
    }
    dump(t, 1u << MC_TCP_TW, bc, port_filter(bc, miss, nmiss, 0), t->covered, t->ncovered);
    memcpy(t->covered + t->ncovered, miss, (size_t)nmiss * sizeof(miss[0]));
    t->ncovered += nmiss;
}

int mc_tcp_table_tw(const struct mc_tcp_table *t, const unsigned long **port,
                    const unsigned long **peer)
{
    *port = t->tw_port;
    *peer = t->tw_peer;
    return t->ntw;
}
