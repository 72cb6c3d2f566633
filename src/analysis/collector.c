/* collector.c - the sampling loop's body: find processes, read their
 * mappings and /proc, append to bounded series (see collector.h). */
#include <dirent.h>
#include <sys/mman.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analysis/collector.h"
#include "common/proc.h"
#include "common/tcp_table.h"
#include "common/util.h"

int mc_collector_init(struct mc_collector *c, const char *dir, pid_t root, double t0)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->dir, sizeof(c->dir), "%s", dir);
    c->root = root;
    c->t0 = t0;
    c->external_work = -1;
    c->py_wait = 2.0;
    c->tcp = mc_tcp_table_new();
    return c->tcp ? 0 : -ENOMEM;
}

/* The per-slot arrays of a process are indexed by hash slot (up to the
 * stack table's capacity, 65536 by default) but only a few entries are
 * ever touched. They come straight from mmap so untouched pages cost
 * nothing: from malloc, once glibc's mmap threshold has risen past their
 * size (it does after the first such block is freed), calloc would clear
 * them and every process would cost megabytes. */
static void *slot_array(size_t n, size_t size)
{
    void *p = mmap(NULL, n * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void slot_array_free(void *p, size_t n, size_t size)
{
    if (p) munmap(p, n * size);
}

static void proc_free(struct mc_proc *p)
{
    if (p->has_map) mc_map_close(&p->map);
    if (p->stk)
        for (uint32_t i = 0; i < p->stk_cap; i++)
            free(p->stk[i]);
    slot_array_free(p->stk, p->stk_alloc, sizeof(*p->stk));
    slot_array_free(p->vals, p->stk_alloc, sizeof(*p->vals));
    for (uint32_t i = 0; i < p->py_cap; i++)
        free(p->py[i]);
    free(p->py);
    free(p->mods);
    free(p);
}

void mc_collector_free(struct mc_collector *c)
{
    for (size_t i = 0; i < c->nprocs; i++)
        proc_free(c->procs[i]);
    free(c->procs);
    mc_tcp_table_free(c->tcp);
    memset(c, 0, sizeof(*c));
}

/* Frees a process that has ended to make room: the oldest of those that
 * lived for fewer than four samples (a shell's /bin/true), else the oldest
 * that ended. Returns 0, -1 if none has ended. */
static int drop_oldest_ended(struct mc_collector *c)
{
    size_t pick = c->nprocs;
    for (size_t i = 0; i < c->nprocs; i++) {
        const struct mc_proc *p = c->procs[i];
        if (p->end == MC_END_RUNNING) continue;
        if (pick == c->nprocs) pick = i;
        if (p->pts.clk.n < 4) {
            pick = i;
            break;
        }
    }
    if (pick == c->nprocs) return -1;
    proc_free(c->procs[pick]);
    memmove(&c->procs[pick], &c->procs[pick + 1], (c->nprocs - pick - 1) * sizeof(c->procs[0]));
    c->nprocs--;
    c->dropped++;
    return 0;
}

/* Maps of processes that could not be kept (MC_MAX_PROCS running at once)
 * are remembered by name while their process lives, so that they are not
 * opened again at every tick; once it is gone its file is removed. */
static int skipped(struct mc_collector *c, const char *name)
{
    for (size_t i = 0; i < c->nskip; i++)
        if (!strcmp(c->skip[i].name, name)) return 1;
    return 0;
}

static void skip_map(struct mc_collector *c, pid_t pid, const char *name)
{
    if (c->nskip >= MC_MAX_SKIPPED) return;
    c->skip[c->nskip].pid = pid;
    snprintf(c->skip[c->nskip].name, sizeof(c->skip[0].name), "%s", name);
    c->nskip++;
}

static void prune_skipped(struct mc_collector *c)
{
    for (size_t i = 0; i < c->nskip;) {
        if (mc_proc_alive(c->skip[i].pid)) {
            i++;
            continue;
        }
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", c->dir, c->skip[i].name);
        unlink(path);
        c->skip[i] = c->skip[--c->nskip];
    }
}

static struct mc_proc *add_proc(struct mc_collector *c, pid_t pid)
{
    if (c->nprocs >= MC_MAX_PROCS && drop_oldest_ended(c) != 0) return NULL;
    if (c->nprocs == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        struct mc_proc **np = realloc(c->procs, cap * sizeof(*np));
        if (!np) return NULL;
        c->procs = np;
        c->cap = cap;
    }
    struct mc_proc *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->pid = pid;
    p->ppid = mc_proc_ppid(pid);
    p->t_start = mc_now() - c->t0;
    char comm[64];
    mc_proc_comm(pid, comm, sizeof(comm));
    snprintf(p->exe, sizeof(p->exe), "%s", comm);
    c->procs[c->nprocs++] = p;
    return p;
}

/* The running entry for pid: the one whose image has not ended. */
static struct mc_proc *find_live(struct mc_collector *c, pid_t pid)
{
    for (size_t i = c->nprocs; i-- > 0;)
        if (c->procs[i]->pid == pid && c->procs[i]->end == MC_END_RUNNING) return c->procs[i];
    return NULL;
}

static int known_map(struct mc_collector *c, const char *path)
{
    for (size_t i = 0; i < c->nprocs; i++)
        if (c->procs[i]->has_map && !strcmp(c->procs[i]->map_path, path)) return 1;
    return 0;
}

/* Attaches mappings that appeared since the last tick. A process seen
 * before only through /proc gets its mapping attached to the same entry. */
static void scan_maps(struct mc_collector *c)
{
    DIR *d = opendir(c->dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int pid, n;
        char path[PATH_MAX];
        if (sscanf(de->d_name, "p%d-%d.map", &pid, &n) != 2) continue;
        snprintf(path, sizeof(path), "%s/%s", c->dir, de->d_name);
        if (known_map(c, path) || skipped(c, de->d_name)) continue;
        struct mc_map m;
        if (mc_map_open(path, &m) != 0) continue; /* not complete yet */
        struct mc_proc *p = find_live(c, pid);
        if (p && p->has_map) {
            /* A new image of a pid we map: the old one was replaced by
             * exec (the new image marked it so, or is about to). */
            p->end = MC_END_EXECED;
            p->t_end = mc_now() - c->t0;
            p = NULL;
        }
        if (!p) p = add_proc(c, pid);
        if (!p) {
            mc_map_close(&m);
            skip_map(c, pid, de->d_name);
            continue;
        }
        p->map = m;
        p->has_map = 1;
        p->ppid = m.lay.ppid;
        snprintf(p->map_path, sizeof(p->map_path), "%s", path);
        snprintf(p->exe, sizeof(p->exe), "%.*s", (int)sizeof(m.lay.exe), m.lay.exe);
        p->stk_cap = m.lay.stack_cap;
        p->stk_alloc = p->stk_cap;
        p->stk = slot_array(p->stk_cap, sizeof(*p->stk));
        p->vals = slot_array(p->stk_cap, sizeof(*p->vals));
        if (!p->stk || !p->vals) p->stk_cap = 0;
        p->py_cap = m.lay.py_cap;
        p->py = calloc(p->py_cap ? p->py_cap : 1, sizeof(*p->py));
        if (!p->py) p->py_cap = 0;
    }
    closedir(d);
}

/* Adds processes of the tree that have no mapping (static binaries, or
 * children that cleared LD_PRELOAD): they still get RSS series. */
static void scan_tree(struct mc_collector *c)
{
    pid_t kids[512];
    if (!c->root_ended && !find_live(c, c->root)) add_proc(c, c->root);
    int n = mc_proc_descendants(c->root, kids, 512);
    if (n > 512) n = 512;
    for (int i = 0; i < n; i++)
        if (!find_live(c, kids[i])) add_proc(c, kids[i]);
}

static void halve_points(struct mc_points *s, uint32_t n)
{
    mc_series_halve_f64(s->t, n);
    mc_series_halve_f64(s->work, n);
    mc_series_halve_f64(s->rss, n);
    mc_series_halve_f64(s->heap, n);
    mc_series_halve_f64(s->heap_count, n);
    mc_series_halve_f64(s->heap_sampled, n);
    mc_series_halve_f64(s->alloc_free, n);
    mc_series_halve_f64(s->alloc_held, n);
    mc_series_halve_f64(s->fds, n);
    mc_series_halve_f64(s->sockets, n);
    mc_series_halve_f64(s->tcp_est, n);
    mc_series_halve_f64(s->tcp_close_wait, n);
    mc_series_halve_f64(s->time_wait, n);
    mc_series_halve_f64(s->threads, n);
    mc_series_halve_f64(s->connects, n);
    mc_series_halve_f64(s->unjoined, n);
}

static void put_res(struct mc_points *s, int i, const struct mc_proc_res *r)
{
    s->fds[i] = r->fds;
    s->sockets[i] = r->sockets;
    s->tcp_est[i] = r->tcp_est;
    s->tcp_close_wait[i] = r->tcp_close_wait;
    s->time_wait[i] = r->time_wait;
    s->threads[i] = r->threads;
}

static void sample_stack(struct mc_proc *p, uint32_t slot, int idx, int halved, int64_t *bytes,
                         int64_t *count, int64_t *sampled)
{
    if (slot >= p->stk_cap) return;
    int64_t b = p->vals[slot].live_bytes;
    int64_t k = p->vals[slot].live_count;
    int64_t f = 0;
    const struct mc_shm_stack_ext *x = mc_map_stack_ext(&p->map, slot);
    for (int i = 0; x && i < MC_FD_KINDS; i++)
        f += __atomic_load_n(&x->fd_live[i], __ATOMIC_RELAXED);
    *bytes += b;
    *count += k;
    struct mc_stack_series *ss = p->stk[slot];
    if (!ss) {
        if (k == 0 && b == 0 && f == 0) return;
        ss = p->stk[slot] = calloc(1, sizeof(*ss)); /* earlier points: 0 */
        if (!ss) return;
    } else if (halved) {
        mc_series_halve_i64(ss->bytes, MC_SERIES_MAX);
        mc_series_halve_i64(ss->count, MC_SERIES_MAX);
        mc_series_halve_i64(ss->fds, MC_SERIES_MAX);
    }
    ss->bytes[idx] = b;
    ss->count[idx] = k;
    ss->fds[idx] = f;
    if (x) ss->sample_mean = __atomic_load_n(&x->sample_mean, __ATOMIC_RELAXED);
    if (ss->sample_mean) {
        *sampled += b;
        if ((double)ss->sample_mean > p->pts.sample_mean)
            p->pts.sample_mean = (double)ss->sample_mean;
    }
}

/* Appends the Python type table to the per-type series. */
static void sample_python(struct mc_proc *p, int idx, int halved)
{
    uint64_t n;
    const struct mc_shm_pytype *ty = mc_map_pytypes(&p->map, &n);
    for (uint32_t i = 0; i < p->py_cap; i++) {
        struct mc_py_series *ps = p->py[i];
        if (!ps && i < n) ps = p->py[i] = calloc(1, sizeof(*ps)); /* earlier points: 0 */
        if (!ps) continue;
        if (halved) {
            mc_series_halve_i64(ps->live, MC_SERIES_MAX);
            mc_series_halve_i64(ps->garbage, MC_SERIES_MAX);
        }
        if (i >= n) continue;
        ps->live[idx] = __atomic_load_n(&ty[i].live, __ATOMIC_RELAXED);
        ps->garbage[idx] = (int64_t)__atomic_load_n(&ty[i].garbage, __ATOMIC_RELAXED);
    }
}

/* Asks every Python process for a snapshot and waits (at most py_wait)
 * until they are done, so that the sample that follows and the Python
 * counts are of the same moment.
 *
 * A snapshot holds the GIL for two walks over every object (python_census.c
 * in the library), so it is not taken at every tick: samples that are kept for sure
 * (final: the end of a load part, of the warm-up, of the run) always get
 * one; other ticks only when PY_MIN_GAP has passed and at least PY_DUTY
 * times as long as the last snapshot took, which bounds the time the
 * target spends in them to about 1/PY_DUTY (12.5%): enough snapshots for
 * a verdict on the object counts within 30 s while a heap grows past
 * 500 MB (2 million objects, snapshots of half a second and more). A run
 * with a set length under 15 s spaces them by a 30th of it instead
 * (py_min_gap, at least 0.05 s), so that a run of 2 s still has enough
 * for a verdict; the duty bound holds all the same. */
#define PY_MIN_GAP 0.5
#define PY_DUTY    8.0

static void python_snapshots(struct mc_collector *c, int final)
{
    int pending = 0;
    double now = mc_now();
    for (size_t i = 0; i < c->nprocs; i++) {
        struct mc_proc *p = c->procs[i];
        if (p->end != MC_END_RUNNING || !p->has_map ||
            __atomic_load_n(&p->map.h->py_state, __ATOMIC_ACQUIRE) != MC_PY_ACTIVE)
            continue;
        /* Every tick, so the target's line tracing sees the requests sent
         * so far (its windows end between snapshots). */
        if (c->external_work >= 0) mc_map_set_work(p->map_path, c->external_work);
        double took = (double)p->map.h->py_snap_ns / 1e9;
        double least = c->py_min_gap > 0 ? c->py_min_gap : PY_MIN_GAP;
        double gap = took * PY_DUTY > least ? took * PY_DUTY : least;
        if (p->py_ticket <= 0 && (final || now - p->py_asked >= gap)) {
            p->py_ticket = mc_map_request_py(p->map_path, &p->map);
            p->py_asked = now;
        }
        pending += p->py_ticket > 0;
    }
    double until = mc_now() + c->py_wait;
    while (pending && mc_now() < until) {
        mc_sleep(0.005);
        pending = 0;
        for (size_t i = 0; i < c->nprocs; i++) {
            struct mc_proc *p = c->procs[i];
            if (p->py_ticket <= 0) continue;
            if (mc_map_load(&p->map.h->py_done) >= (uint64_t)p->py_ticket) {
                p->py_ticket = 0;
                p->py_fresh = 1;
            } else if (p->map.h->py_state != MC_PY_ACTIVE || !mc_proc_alive(p->pid)) {
                p->py_ticket = 0;
            } else
                pending++;
        }
    }
    /* What is still pending is late: served before a later sample, or not. */
    for (size_t i = 0; i < c->nprocs; i++)
        if (c->procs[i]->py_ticket > 0) c->procs[i]->py_late++;
}

static void sample_proc(struct mc_collector *c, struct mc_proc *p, double t, int final)
{
    int alive = p->pid == c->root ? !c->root_ended : mc_proc_alive(p->pid);
    const struct mc_shm_header *h = p->has_map ? p->map.h : NULL;
    int execed = h && __atomic_load_n(&h->state, __ATOMIC_ACQUIRE) == MC_PROC_EXECED;
    /* Reading /proc takes longer as descriptors and sockets pile up; the
     * work done is read before and after it and the midpoint kept, so that
     * a growing lag cannot bend the slope per unit. The second reading is
     * taken as soon as /proc is read, so that the time spent on the
     * stacks' snapshot below does not widen the window. */
    double work_before = h ? (double)mc_map_load(&h->work_units) : 0;
    int closing = !alive || execed;
    /* /proc is read for the samples that are kept (here or in the tree's
     * series), not at every tick: once a long run's series are thinned,
     * most ticks keep nothing. */
    int needed = final || closing || c->every_tick || mc_clock_would_keep(&p->pts.clk) ||
                 mc_clock_would_keep(&c->tree.clk);
    if (alive && !execed && needed) {
        int64_t rss = mc_proc_rss(p->pid);
        struct mc_proc_res res;
        int got = mc_proc_resources(p->pid, &res, c->tcp) == 0;
        /* Read while the process tears itself down, the figures would show
         * its exit, not its state: such a reading is dropped. */
        if (!mc_proc_exiting(p->pid)) {
            if (rss >= 0) p->last_rss = (double)rss;
            /* The library's own threads (its rest thread, the Python
             * bridge) are not the program's: the count is a plain run's. */
            uint32_t own = h ? __atomic_load_n(&h->lib_threads, __ATOMIC_RELAXED) : 0;
            if (got && own && res.threads > (int)own) res.threads -= (int)own;
            if (got) p->last_res = res;
        }
        /* The descriptor limit, read again when the count comes near what
         * was read (a program may raise it at start). */
        if (got && (p->fd_limit <= 0 || res.fds >= 0.9 * p->fd_limit)) {
            int64_t lim = mc_proc_fd_limit(p->pid);
            if (lim > 0) p->fd_limit = (double)lim;
        }
    }
    double work_at = h ? (work_before + (double)mc_map_load(&h->work_units)) / 2 : 0;
    int halved;
    int idx = c->frozen ? -1 : mc_clock_next(&p->pts.clk, final || closing, &halved);
    if (idx >= 0) {
        struct mc_points *s = &p->pts;
        if (halved) halve_points(s, MC_SERIES_MAX);
        s->t[idx] = t;
        s->rss[idx] = p->last_rss;
        put_res(s, idx, &p->last_res);
        if (h) {
            int64_t bytes = 0, count = 0, sampled = 0;
            uint64_t ns = 0;
            if (p->stk_cap && mc_map_snapshot(&p->map, p->vals, &ns) != 0) p->torn++;
            /* Every slot with a series must be halved even if not sampled;
             * walking the published list reaches all of them (slot 0 too). */
            sample_stack(p, MC_STACK_OVERFLOW, idx, halved, &bytes, &count, &sampled);
            for (uint64_t i = 0; i < ns; i++) {
                int64_t slot = mc_map_stack_slot(&p->map, i);
                if (slot > 0)
                    sample_stack(p, (uint32_t)slot, idx, halved, &bytes, &count, &sampled);
            }
            s->heap[idx] = (double)bytes;
            s->heap_count[idx] = (double)count;
            s->heap_sampled[idx] = (double)sampled;
            s->work[idx] = c->external_work >= 0 ? c->external_work : work_at;
            s->alloc_free[idx] = (double)h->mi_fordblks;
            s->alloc_held[idx] = (double)(h->mi_arena + h->mi_hblkhd);
            s->connects[idx] = (double)mc_map_load(&h->connects);
            s->unjoined[idx] = (double)(int64_t)mc_map_load((const uint64_t *)&h->threads_unjoined);
        } else {
            s->work[idx] = c->external_work >= 0 ? c->external_work : 0;
        }
    }
    /* A fresh Python snapshot is a point of the Python series, whether or
     * not this sample is kept in the others (they are thinned on their own
     * clock; snapshots are rarer and each one counts). */
    if (h && p->py_fresh && p->py_cap) {
        int ph;
        int pi = mc_clock_next(&p->py_clk, 1, &ph);
        if (pi >= 0) {
            if (ph) {
                mc_series_halve_f64(p->py_t, MC_SERIES_MAX);
                mc_series_halve_f64(p->py_work, MC_SERIES_MAX);
            }
            p->py_t[pi] = t;
            p->py_work[pi] = c->external_work >= 0 ? c->external_work : work_at;
            sample_python(p, pi, ph);
        }
    }
    p->py_fresh = 0;
    if (closing && p->end == MC_END_RUNNING) {
        /* Its last sample is taken: the file goes (the mapping stays valid
         * for the report), so the run directory holds only what lives. */
        if (p->has_map) unlink(p->map_path);
        p->t_end = t;
        if (execed)
            p->end = MC_END_EXECED;
        else if (p->pid != c->root)
            p->end = h && h->state == MC_PROC_EXITED ? MC_END_EXITED : MC_END_VANISHED;
        else {
            p->end = c->root_how;
            p->status = c->root_status;
            p->sig = c->root_sig;
        }
    }
}

void mc_collector_tick(struct mc_collector *c, int final)
{
    mc_tcp_table_expire(c->tcp);
    prune_skipped(c);
    scan_maps(c);
    if (!final) scan_tree(c);
    if (!c->frozen) python_snapshots(c, final);
    if (!final) mc_age_tick(c);
    double t = mc_now() - c->t0;
    double rss = 0, heap = 0, count = 0, afree = 0, aheld = 0, work = 0, conns = 0, unj = 0;
    double sampled = 0;
    struct mc_proc_res res = {0};
    for (size_t i = 0; i < c->nprocs; i++) {
        struct mc_proc *p = c->procs[i];
        if (p->end != MC_END_RUNNING) continue;
        sample_proc(c, p, t, final);
        uint32_t n = p->pts.clk.n;
        if (n == 0) continue;
        /* The tree counts images that were running at this tick. */
        rss += p->pts.rss[n - 1];
        heap += p->pts.heap[n - 1];
        count += p->pts.heap_count[n - 1];
        sampled += p->pts.heap_sampled[n - 1];
        if (p->pts.sample_mean > c->tree.sample_mean) c->tree.sample_mean = p->pts.sample_mean;
        afree += p->pts.alloc_free[n - 1];
        aheld += p->pts.alloc_held[n - 1];
        res.fds += p->last_res.fds;
        res.sockets += p->last_res.sockets;
        res.tcp_est += p->last_res.tcp_est;
        res.tcp_close_wait += p->last_res.tcp_close_wait;
        res.time_wait += p->last_res.time_wait;
        res.threads += p->last_res.threads;
        conns += p->pts.connects[n - 1];
        unj += p->pts.unjoined[n - 1];
        if (c->external_work < 0) work += p->pts.work[n - 1];
    }
    int halved;
    int idx = c->frozen ? -1 : mc_clock_next(&c->tree.clk, final, &halved);
    if (idx < 0) return;
    if (halved) halve_points(&c->tree, MC_SERIES_MAX);
    c->tree.t[idx] = t;
    c->tree.rss[idx] = rss;
    c->tree.heap[idx] = heap;
    c->tree.heap_count[idx] = count;
    c->tree.heap_sampled[idx] = sampled;
    c->tree.alloc_free[idx] = afree;
    c->tree.alloc_held[idx] = aheld;
    put_res(&c->tree, idx, &res);
    c->tree.connects[idx] = conns;
    c->tree.unjoined[idx] = unj;
    c->tree.work[idx] = c->external_work >= 0 ? c->external_work : work;
}

void mc_collector_root_ended(struct mc_collector *c, enum mc_end how, int status, int sig)
{
    c->root_ended = 1;
    c->root_how = how;
    c->root_status = status;
    c->root_sig = sig;
}

void mc_collector_freeze(struct mc_collector *c)
{
    c->frozen = 1;
}

void mc_collector_close(struct mc_collector *c)
{
    double t = mc_now() - c->t0;
    for (size_t i = 0; i < c->nprocs; i++) {
        struct mc_proc *p = c->procs[i];
        if (p->end != MC_END_RUNNING) continue;
        p->end = MC_END_STOPPED;
        p->t_end = t;
    }
}

const struct mc_shm_module *mc_proc_modules(struct mc_proc *p)
{
    uint64_t published;
    mc_map_modules(&p->map, &published);
    if (!p->mods || p->nmods != published) {
        free(p->mods);
        p->mods = mc_map_modules_copy(&p->map, &p->nmods);
    }
    return p->mods;
}

struct mc_proc *mc_collector_root(struct mc_collector *c)
{
    struct mc_proc *best = NULL;
    for (size_t i = 0; i < c->nprocs; i++) {
        struct mc_proc *p = c->procs[i];
        if (p->pid != c->root) continue;
        if (!best || (p->has_map && p->end != MC_END_EXECED)) best = p;
    }
    return best;
}

static void restart_points(struct mc_points *s)
{
    memset(&s->clk, 0, sizeof(s->clk));
}

void mc_collector_restart(struct mc_collector *c)
{
    restart_points(&c->tree);
    for (size_t i = 0; i < c->nprocs; i++) {
        struct mc_proc *p = c->procs[i];
        restart_points(&p->pts);
        for (uint32_t k = 0; k < p->stk_cap; k++) {
            free(p->stk[k]);
            p->stk[k] = NULL;
        }
        for (uint32_t k = 0; k < p->py_cap; k++) {
            free(p->py[k]);
            p->py[k] = NULL;
        }
        memset(&p->py_clk, 0, sizeof(p->py_clk));
        p->age_rows = 0;
        p->age_ticket = 0;
        p->py_age_rows = 0;
        p->py_age_ticket = 0;
    }
    c->t0_series = mc_now() - c->t0;
    /* What was made before the restart (a warm-up) is an epoch of its own. */
    mc_age_next_epoch(c);
    if (c->age_slice > 0) c->age_next = c->t0_series + c->age_slice;
}
