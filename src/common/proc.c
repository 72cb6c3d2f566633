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
