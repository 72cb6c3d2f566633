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

int mc_proc_descendants(pid_t root, pid_t *out, int max)
{
    /* One pass collects (pid, ppid) pairs; then the tree is walked from
     * root breadth-first over that snapshot. */
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
