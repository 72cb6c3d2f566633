/* proc.c - /proc readers. Each call opens, reads and closes: a process can
 * vanish between two calls, and every reader then reports "gone". */
#include <dirent.h>
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

struct tcp_entry {
    unsigned long inode;
    int state;
    char local[48], remote[48]; /* hex address:port as in /proc/net/tcp */
};

/* Reads /proc/PID/net/tcp and tcp6 into e (up to max). Returns the count. */
static int read_tcp(pid_t pid, struct tcp_entry *e, int max)
{
    int n = 0;
    const char *files[] = {"net/tcp", "net/tcp6"};
    for (int f = 0; f < 2; f++) {
        char path[64], line[512];
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
            if (sscanf(line, " %*d: %47s %47s %x %*s %*s %*s %*d %*d %lu", t->local, t->remote, &st,
                       &t->inode) != 4)
                continue;
            t->state = (int)st;
            n++;
        }
        fclose(fp);
    }
    return n;
}

static int cmp_ulong(const void *a, const void *b)
{
    unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
    return (x > y) - (x < y);
}

/* The port part of "ADDR:PORT" in /proc/net/tcp's hex form. */
static const char *port_of(const char *addr)
{
    const char *c = strrchr(addr, ':');
    return c ? c + 1 : "";
}

int mc_proc_resources(pid_t pid, struct mc_proc_res *r)
{
    static unsigned long inodes[MAX_SOCK];
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
    int nt = read_tcp(pid, tcp, MAX_SOCK);
    /* Listening ports and peers of this process, to find its TIME_WAITs. */
    enum { KEEP = 256 };
    char ports[KEEP][8], peers[KEEP][48];
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
            if (np < KEEP) snprintf(ports[np++], sizeof(ports[0]), "%s", port_of(tcp[i].local));
            continue;
        default:
            r->tcp_other++;
        }
        if (nr < KEEP) snprintf(peers[nr++], sizeof(peers[0]), "%s", tcp[i].remote);
    }
    for (int i = 0; i < nt; i++) {
        if (tcp[i].state != 0x06) continue;
        int mine = 0;
        for (int k = 0; k < np && !mine; k++)
            mine = !strcmp(port_of(tcp[i].local), ports[k]);
        for (int k = 0; k < nr && !mine; k++)
            mine = !strcmp(tcp[i].remote, peers[k]);
        r->time_wait += mine;
    }
    return 0;
}
