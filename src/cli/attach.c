/* attach.c - memcreep attach's part of a session (see attach.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/attach.h"
#include "cli/cli.h"
#include "cli/inject.h"
#include "common/proc.h"
#include "common/shm_reader.h"
#include "common/util.h"

/* memcreep's start time in clock ticks (field 22 of /proc/self/stat): the
 * library compares it with what /proc says of memcreep's pid, so that
 * another process given the pid later is not taken for memcreep. */
static unsigned long long self_start(void)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')');
    int field = 2;
    for (; p && *p && field < 22; p++)
        if (*p == ' ') field++;
    return p ? strtoull(p, NULL, 10) : 0;
}

/* The settings the library gets, as lines. */
static int make_conf(const struct mc_session_opts *o, const char *dir, char *out, size_t len)
{
    char lines[MC_SESSION_SETTINGS][PATH_MAX + 64];
    int n = mc_session_settings(o, dir, lines);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        int w = snprintf(out + at, len - at, "%s\n", lines[i]);
        if (w < 0 || (size_t)w >= len - at) return -1;
        at += (size_t)w;
    }
    int w = snprintf(out + at, len - at, "MEMCREEP_ATTACH_PID=%d\nMEMCREEP_ATTACH_START=%llu",
                     (int)getpid(), self_start());
    return w < 0 || (size_t)w >= len - at ? -1 : 0;
}

/* What mc_attach_start's return means. */
static const char *start_error(int rc)
{
    switch (-rc) {
    case EALREADY:
        return "another memcreep is attached to it now";
    case EBUSY:
        return "the last memcreep attached to it is still detaching: try again";
    case ENOENT:
        return "none of the functions memcreep follows is the C library's in it";
    case EIO:
        return "the library could not make its mapping in the run directory";
    case EAGAIN:
        return "the library could not start its thread";
    default:
        return strerror(-rc);
    }
}

/* Attaches one process. Returns 1 attached, 0 refused (said), -1 gone. */
static int attach_one(pid_t pid, pid_t root, const char *lib, const char *dir, const char *conf,
                      double *paused_max)
{
    double paused = 0;
    char msg[PATH_MAX + 256], who[64] = "";
    if (pid != root) snprintf(who, sizeof(who), " (in the tree of PID %d)", (int)root);
    enum mc_inject_err e = mc_inject_check(pid, lib, dir, msg, sizeof(msg));
    int ret = 0;
    if (e == MC_INJECT_OK) e = mc_inject(pid, lib, conf, &ret, &paused, msg, sizeof(msg));
    if (paused > *paused_max) *paused_max = paused;
    if (e == MC_INJECT_OK && ret < 0) {
        snprintf(msg, sizeof(msg), "%s", start_error(ret));
        e = MC_INJECT_FAILED;
    }
    if (e == MC_INJECT_OK) return 1;
    mc_error("cannot attach to PID %d%s: %s; watching it from outside only", (int)pid, who, msg);
    return e == MC_INJECT_GONE ? -1 : 0;
}

int mc_attach_tree(const struct mc_session_opts *o, pid_t pid, const char *lib, const char *dir,
                   double *paused_max)
{
    *paused_max = 0;
    char real[PATH_MAX], conf[8192];
    if (!realpath(lib, real) || make_conf(o, dir, conf, sizeof(conf)) != 0) {
        mc_error("cannot attach to PID %d: the library's path or settings are too long", (int)pid);
        return MC_ATTACH_TREE_REFUSED;
    }
    /* The run directory is memcreep's (mode 0700): a process of another
     * user gets it as its own, so that it can publish there. */
    struct stat sb;
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/%d", (int)pid);
    if (geteuid() == 0 && stat(proc, &sb) == 0 && sb.st_uid != 0 &&
        chown(dir, sb.st_uid, sb.st_gid) != 0)
        mc_error("cannot give the run directory to uid %d: %s", (int)sb.st_uid, strerror(errno));
    int r = attach_one(pid, pid, real, dir, conf, paused_max);
    if (r < 0) return MC_ATTACH_TREE_GONE;
    int n = r;
    pid_t kids[512];
    int nk = mc_proc_descendants(pid, kids, 512);
    for (int i = 0; i < nk && i < 512; i++)
        n += attach_one(kids[i], pid, real, dir, conf, paused_max) > 0;
    return r ? n : MC_ATTACH_TREE_REFUSED;
}

void mc_attach_settle(struct mc_collector *c, double timeout)
{
    double until = mc_now() + timeout;
    for (;;) {
        mc_collector_tick(c, 0);
        int pending = 0;
        for (size_t i = 0; i < c->nprocs; i++) {
            struct mc_proc *p = c->procs[i];
            const struct mc_shm_header *h = p->has_map ? p->map.h : NULL;
            pending += h && p->end == MC_END_RUNNING && mc_map_load32(&h->attach_python) &&
                       mc_map_load32(&h->py_state) != MC_PY_OFF && !mc_map_load(&h->py_done);
        }
        if (!pending || mc_now() >= until) return;
        mc_sleep(0.02);
    }
}

void mc_attach_detach_all(struct mc_collector *c, double timeout)
{
    for (size_t i = 0; i < c->nprocs; i++) {
        struct mc_proc *p = c->procs[i];
        if (p->has_map && p->end == MC_END_RUNNING &&
            mc_map_load32(&p->map.h->attach_state) == MC_ATTACH_ON)
            mc_map_request_detach(p->map_path, &p->map);
    }
    double until = mc_now() + timeout;
    for (;;) {
        int pending = 0;
        for (size_t i = 0; i < c->nprocs; i++) {
            struct mc_proc *p = c->procs[i];
            pending += p->has_map && p->end == MC_END_RUNNING && mc_proc_alive(p->pid) &&
                       mc_map_load32(&p->map.h->attach_state) == MC_ATTACH_ON;
        }
        if (!pending || mc_now() >= until) break;
        mc_sleep(0.01);
    }
    for (size_t i = 0; i < c->nprocs; i++) {
        struct mc_proc *p = c->procs[i];
        if (p->has_map && p->end == MC_END_RUNNING && mc_proc_alive(p->pid) &&
            mc_map_load32(&p->map.h->attach_state) == MC_ATTACH_ON)
            mc_error("PID %d did not detach within %.0f s (it does by itself once memcreep has "
                     "ended)",
                     (int)p->pid, timeout);
    }
}
