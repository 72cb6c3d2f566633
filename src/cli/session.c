/* session.c - one measured session of `memcreep run` (see session.h). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "analysis/collector.h"
#include "analysis/sites.h"
#include "common/proc.h"
#include "analysis/stats.h"
#include "analysis/symbolize.h"
#include "cli/attach.h"
#include "cli/cli.h"
#include "cli/session.h"
#include "cli/supervise.h"
#include "common/util.h"
#include "load/summary.h"
#include "load/url.h"
#include "report/result.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

/* SIGCHLD: nothing to do but wake the loop (it reaps). */
static void on_child(int sig)
{
    (void)sig;
}

/* The private run directory for the shared mappings, mode 0700 from
 * mkdtemp: under --run-dir when given, else tmpfs when there is one (the
 * mapped pages then never go to disk), else $TMPDIR or /tmp. */
static int make_run_dir(const char *want, char *out, size_t len)
{
    if (want) {
        snprintf(out, len, "%s/memcreep-XXXXXX", want);
        return mkdtemp(out) ? 0 : -errno;
    }
    const char *bases[] = {"/dev/shm", getenv("TMPDIR"), "/tmp"};
    for (size_t i = 0; i < 3; i++) {
        if (!bases[i] || access(bases[i], W_OK) != 0) continue;
        snprintf(out, len, "%s/memcreep-XXXXXX", bases[i]);
        if (mkdtemp(out)) return 0;
    }
    return -errno;
}

/* Prints what the preloaded library wrote into the run directory's
 * "warnings" file (it never writes into the program's stderr): at most 20
 * lines, control characters shown as '?'. */
static void print_warnings(const char *dir)
{
    char path[PATH_MAX + 16], line[400];
    snprintf(path, sizeof(path), "%s/warnings", dir);
    FILE *f = fopen(path, "re");
    if (!f) return;
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        size_t l = strcspn(line, "\n");
        line[l] = 0;
        for (size_t i = 0; i < l; i++)
            if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f) line[i] = '?';
        if (n++ < 20) mc_error("in the target: %s", line);
        if (l == sizeof(line) - 1) { /* the rest of an over-long line */
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n')
                ;
        }
    }
    if (n > 20) mc_error("in the target: %d more warnings", n - 20);
    fclose(f);
}

static void remove_run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL)
            if (de->d_name[0] != '.') unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
    }
    rmdir(dir);
}

/* libmemcreep.so (libmemcreep-attach.so for attach) next to this
 * executable, or in ../lib or ../lib/memcreep (installed layouts);
 * MEMCREEP_LIB (MEMCREEP_ATTACH_LIB) overrides. */
static int find_preload(char *out, size_t len, int attach)
{
    const char *name = attach ? "libmemcreep-attach.so" : "libmemcreep.so";
    const char *env = getenv(attach ? "MEMCREEP_ATTACH_LIB" : "MEMCREEP_LIB");
    if (env && *env) {
        snprintf(out, len, "%s", env);
        return access(out, R_OK) == 0 ? 0 : -errno;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) return -errno;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash) *slash = 0;
    const char *rel[] = {"", "/../lib", "/../lib/memcreep"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(out, len, "%s%s/%s", self, rel[i], name);
        if (access(out, R_OK) == 0) return 0;
    }
    return -ENOENT;
}

int mc_session_settings(const struct mc_session_opts *o, const char *rundir,
                        char (*out)[PATH_MAX + 64])
{
    int n = 0;
    snprintf(out[n++], sizeof(out[0]), "MEMCREEP_DIR=%s", rundir);
    snprintf(out[n++], sizeof(out[0]), "MEMCREEP_DEPTH=%llu", (unsigned long long)o->depth);
    snprintf(out[n++], sizeof(out[0]), "MEMCREEP_STACKS=%llu", (unsigned long long)o->stacks);
    snprintf(out[n++], sizeof(out[0]), "MEMCREEP_SAMPLE_BYTES=%llu",
             (unsigned long long)o->sample_bytes);
    snprintf(out[n++], sizeof(out[0]), "MEMCREEP_PY_TRACE_MS=%.0f", o->py_trace * 1000);
    /* The first window after half a period, at most 10 s: start-up
     * (imports) is not what grows. */
    snprintf(out[n++], sizeof(out[0]), "MEMCREEP_PY_FIRST_MS=%.0f",
             (o->py_trace < 20 ? o->py_trace / 2 : 10) * 1000);
    snprintf(out[n++], sizeof(out[0]), "MEMCREEP_PY_UNIT=%s", o->py_unit ? o->py_unit : "");
    snprintf(out[n++], sizeof(out[0]), "MEMCREEP_PY_SAMPLE_BYTES=%llu",
             (unsigned long long)o->py_sample_bytes);
    if (o->burst_rate_set)
        snprintf(out[n++], sizeof(out[0]), "MEMCREEP_BURST_RATE=%llu",
                 (unsigned long long)o->burst_rate);
    return n;
}

/* What a session carries between its steps. */
struct session {
    const struct mc_session_opts *o;
    struct mc_collector col;
    pid_t pid;
    double t0, end_at;
    int ended, signaled, status, sig;
    int vanished;      /* an attached process ended (how is unknown) */
    double attached_t; /* attach: seconds after the start when the hooks went in, 0: never */
    double paused;     /* attach: the longest a borrowed thread was stopped, s */
    int attached_n;    /* attach: processes the library went into */
    const char *stopped_by;
    double next_progress;
    struct mc_load *ld;
    json_t *rounds;
    json_t *load_summary;       /* taken before the malloc_trim probe adds requests */
    double prev_heap, prev_rss; /* at the end of the previous round */
    int workload_status;        /* the workload's failure, 0 when it did not fail */
};

/* Reaps any child; notes how the root ended once it has. As a subreaper
 * memcreep also inherits orphaned descendants and must reap them. */
static int reap(struct session *s)
{
    int st;
    pid_t r;
    if (s->o->attach_pid) {
        /* Not memcreep's child: how it ended is not known. */
        while (waitpid(-1, &st, WNOHANG) > 0)
            ;
        if (!s->ended && !mc_proc_alive(s->pid)) s->ended = s->vanished = 1;
        return s->ended;
    }
    while (!s->ended && (r = waitpid(-1, &st, WNOHANG)) > 0) {
        if (r != s->pid) continue;
        s->signaled = WIFSIGNALED(st);
        s->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        s->sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
        s->ended = 1;
    }
    return s->ended;
}

static void progress(struct session *s)
{
    const struct mc_points *p = &s->col.tree;
    double now = mc_now();
    if (!s->o->tty || now < s->next_progress || !p->clk.n) return;
    s->next_progress = now + 1;
    char rss[32], heap[32], req[64] = "";
    mc_fmt_bytes(rss, sizeof(rss), p->rss[p->clk.n - 1], 0);
    mc_fmt_bytes(heap, sizeof(heap), p->heap[p->clk.n - 1], 0);
    if (s->ld)
        snprintf(req, sizeof(req), "  %llu requests",
                 (unsigned long long)mc_load_stats(s->ld)->done);
    fprintf(stderr, "\r\033[K[memcreep] %6.1f s  RSS %s  live heap %s%s", now - s->t0, rss, heap,
            req);
    fflush(stderr);
}

/* Should the session stop now (target gone, duration over, signal)? */
static int should_stop(struct session *s)
{
    if (reap(s)) return 1;
    if (stop_signal) {
        s->stopped_by = "signal";
        return 1;
    }
    if (s->end_at > 0 && mc_now() >= s->end_at) {
        s->stopped_by = "duration";
        return 1;
    }
    return 0;
}

/* The load driver's tick: sample, with the requests done as the x axis. */
static int load_tick(void *arg)
{
    struct session *s = arg;
    s->col.external_work = (double)mc_load_stats(s->ld)->done;
    if (should_stop(s)) return 1;
    mc_collector_tick(&s->col, 0);
    mc_metrics_update(s->o->metrics, &s->col, s->col.external_work, mc_now() - s->t0, 0);
    progress(s);
    return 0;
}

/* Samples every interval until should_stop says so. */
static void watch(struct session *s)
{
    double next = mc_now();
    while (!should_stop(s)) {
        double now = mc_now();
        if (now >= next) {
            mc_collector_tick(&s->col, 0);
            mc_metrics_update(s->o->metrics, &s->col, s->ld ? s->col.external_work : -1,
                              mc_now() - s->t0, 0);
            next += s->o->interval;
            if (next < now) next = now + s->o->interval;
        }
        progress(s);
        double wait = next - mc_now();
        mc_sleep(wait < 0.02 ? (wait > 0 ? wait : 0) : 0.02);
    }
}

/* Waits until host:port accepts connections, the target dies or the time
 * runs out. Returns 0 when it listens. */
static int wait_listening(struct session *s, const struct mc_url *u)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    int gai = getaddrinfo(u->host, u->port, &hints, &ai);
    if (gai != 0) {
        mc_error("cannot resolve '%s': %s", u->host, gai_strerror(gai));
        return -2;
    }
    double until = mc_now() + s->o->listen_timeout;
    int rc = -1;
    while (mc_now() < until && !should_stop(s)) {
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            close(fd);
            rc = 0;
            break;
        }
        if (fd >= 0) close(fd);
        mc_collector_tick(&s->col, 0);
        mc_sleep(0.05);
    }
    freeaddrinfo(ai);
    return rc;
}

static void add_round(struct session *s, int round, uint64_t done_before, double t_start)
{
    const struct mc_points *p = &s->col.tree;
    const struct mc_load_stats *st = mc_load_stats(s->ld);
    uint32_t n = p->clk.n;
    json_t *r = json_object();
    double secs = mc_now() - t_start;
    json_object_set_new(r, "round", json_integer(round));
    json_object_set_new(r, "requests", json_integer((json_int_t)(st->done - done_before)));
    json_object_set_new(r, "requests_total", json_integer((json_int_t)st->done));
    json_object_set_new(r, "seconds", json_real(secs));
    json_object_set_new(r, "requests_per_s",
                        json_real(secs > 0 ? (double)(st->done - done_before) / secs : 0));
    double heap = n ? p->heap[n - 1] : 0, rss = n ? p->rss[n - 1] : 0;
    json_object_set_new(r, "live_heap", json_real(heap));
    json_object_set_new(r, "rss", json_real(rss));
    json_object_set_new(r, "delta_live_heap", json_real(heap - s->prev_heap));
    json_object_set_new(r, "delta_rss", json_real(rss - s->prev_rss));
    s->prev_heap = heap;
    s->prev_rss = rss;
    json_array_append_new(s->rounds, r);
}

/* Drives the load: warm-up (then the series start afresh), then rounds,
 * each followed by a sample once in-flight requests have finished. */
static int drive_load(struct session *s)
{
    const struct mc_session_opts *o = s->o;
    struct mc_load_cli *l = o->load;
    char err[512];
    struct mc_url u;
    if (mc_url_parse(l->urls[0], &u, err, sizeof(err)) != 0) {
        mc_error("%s", err);
        return -1;
    }
    int wl = wait_listening(s, &u);
    if (wl != 0) {
        if (wl == -1 && !s->ended && !stop_signal)
            mc_error("'%s' never listened on %s within %.0f s", o->target[0], u.authority,
                     o->listen_timeout);
        return s->ended || stop_signal ? 0 : -1;
    }
    struct mc_load_opts lo = l->o;
    lo.proto = o->proto;
    if (lo.proto == MC_PROTO_H2 && !l->streams_set) lo.streams = 10;
    if (lo.proto == MC_PROTO_H1 && !l->streams_set) lo.streams = 1;
    if (mc_load_new(&lo, &s->ld, err, sizeof(err)) != 0) {
        mc_error("%s", err);
        return -1;
    }
    s->rounds = json_array();
    if (o->warmup) {
        if (mc_load_run(s->ld, o->warmup, 0, o->interval, load_tick, s, err, sizeof(err)) != 0) {
            mc_error("warm-up: %s", err);
            return 0;
        }
    }
    mc_collector_restart(&s->col);
    s->col.external_work = (double)mc_load_stats(s->ld)->done;
    mc_collector_tick(&s->col, 1);
    if (s->col.tree.clk.n) {
        s->prev_heap = s->col.tree.heap[s->col.tree.clk.n - 1];
        s->prev_rss = s->col.tree.rss[s->col.tree.clk.n - 1];
    }
    double round_s = o->duration > 0 && !o->round_requests ? o->duration / (double)o->rounds : 0;
    if (round_s > 0) s->end_at = 0; /* the rounds measure the time themselves */
    /* Each round is run in SUBS parts with a sample after each, so that
     * even short rounds give the trend tests enough points (8 rounds: 33). */
    enum { SUBS = 4 };
    mc_age_schedule(&s->col, 1, 0);
    for (uint64_t r = 0; r < o->rounds && !s->ended && !stop_signal; r++) {
        if (r > 0) mc_age_next_epoch(&s->col); /* each round is an epoch */
        uint64_t before = mc_load_stats(s->ld)->done;
        double t = mc_now();
        int rc = 0;
        for (int k = 0; k < SUBS && rc == 0 && !s->ended && !stop_signal; k++) {
            uint64_t want = 0;
            if (!(round_s > 0)) {
                want = o->round_requests * (uint64_t)(k + 1) / SUBS -
                       o->round_requests * (uint64_t)k / SUBS;
                if (!want) continue;
            }
            rc = mc_load_run(s->ld, want, round_s > 0 ? round_s / SUBS : 0, o->interval, load_tick,
                             s, err, sizeof(err));
            s->col.external_work = (double)mc_load_stats(s->ld)->done;
            if (!s->ended) mc_collector_tick(&s->col, 1);
            if (s->stopped_by && strcmp(s->stopped_by, "exit")) break;
        }
        add_round(s, (int)r + 1, before, t);
        if (rc != 0) {
            if (!s->ended) mc_error("load: %s", err);
            break;
        }
        if (s->stopped_by && strcmp(s->stopped_by, "exit")) break;
    }
    if (!s->ended && !stop_signal && (!s->stopped_by || !strcmp(s->stopped_by, "exit")))
        s->stopped_by = "load done";
    return 0;
}

/* Runs the workload command; the session ends when it does. */
static int drive_workload(struct session *s)
{
    char *argv[] = {"/bin/sh", "-c", (char *)s->o->workload, NULL};
    pid_t w;
    int r = mc_spawn(argv, NULL, &w);
    if (r != 0) {
        mc_error("cannot run workload '%s': %s", s->o->workload, strerror(-r));
        return -1;
    }
    double next = mc_now();
    int st;
    for (;;) {
        pid_t got = waitpid(w, &st, WNOHANG);
        if (got == w) break;
        if (should_stop(s)) {
            kill(-w, SIGTERM);
            waitpid(w, &st, 0);
            return 0;
        }
        if (mc_now() >= next) {
            mc_collector_tick(&s->col, 0);
            next = mc_now() + s->o->interval;
        }
        progress(s);
        mc_sleep(0.02);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        s->workload_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        mc_error("workload '%s' ended with status %d", s->o->workload, s->workload_status);
    }
    s->stopped_by = "workload done";
    return 0;
}

/* Asks every preloaded process still running to malloc_trim(0) and waits
 * until it has. The library's rest thread (preload/rest.c) trims once the
 * target is at rest and reads RSS and the allocator's state around it from
 * inside; a process without that thread trims at its next allocations, so
 * it is given work (or time) and its RSS is read from here. What comes
 * back is memory the allocator kept although the program had freed it. */
static void trim_probe(struct session *s)
{
    int asked = 0, busy = 0;
    for (size_t i = 0; i < s->col.nprocs; i++) {
        struct mc_proc *p = s->col.procs[i];
        if (!p->has_map || p->end != MC_END_RUNNING || !mc_proc_alive(p->pid)) continue;
        p->trim_rss_before = (double)mc_proc_rss(p->pid);
        p->trim_heap = p->pts.clk.n ? p->pts.heap[p->pts.clk.n - 1] : 0;
        p->trim_ticket = mc_map_request_trim(p->map_path, &p->map);
        p->trim_asked = p->trim_ticket > 0;
        asked += p->trim_asked;
        busy += p->trim_asked && !mc_map_load32(&p->map.h->rest_running);
    }
    if (!asked) return;
    char err[256];
    double until = mc_now() + 3;
    /* Only the target's end stops the probe: the duration is already over. */
    while (mc_now() < until && !reap(s) && !stop_signal) {
        int pending = 0;
        for (size_t i = 0; i < s->col.nprocs; i++) {
            struct mc_proc *p = s->col.procs[i];
            if (p->trim_asked && !p->trim_served) {
                p->trim_served = mc_map_trim_done(&p->map, p->trim_ticket);
                pending += !p->trim_served;
            }
        }
        if (!pending) break;
        /* Without a rest thread the target trims at its next allocations:
         * with a load, cause some; without, wait for its own. */
        if (s->ld && busy)
            mc_load_run(s->ld, 50, 0.5, 0, NULL, NULL, err, sizeof(err));
        else
            mc_sleep(0.02);
    }
    for (size_t i = 0; i < s->col.nprocs; i++) {
        struct mc_proc *p = s->col.procs[i];
        if (!p->trim_asked) continue;
        const struct mc_shm_header *h = p->map.h;
        p->trim_free_before = (double)mc_map_load(&h->trim_free_before);
        p->trim_free_after = (double)mc_map_load(&h->trim_free_after);
        p->trim_by_rest = p->trim_served && mc_map_load32(&h->trim_by_rest);
        if (p->trim_served) {
            /* Read in the target around the trim itself. */
            p->trim_rss_before = (double)mc_map_load(&h->trim_rss_before);
            p->trim_rss_after = (double)mc_map_load(&h->trim_rss_after);
            p->trim_heap = (double)mc_map_load(&h->trim_heap);
            p->trim_rest_s = (double)mc_map_load(&h->trim_rest_ns) / 1e9;
        } else {
            p->trim_rss_after = (double)mc_proc_rss(p->pid);
        }
        uint32_t n = p->trim_by_rest ? mc_map_load32(&h->trim_pins) : 0;
        p->trim_npins = n < 4 ? (int)n : 4;
        for (int k = 0; k < p->trim_npins; k++) {
            p->trim_pin[k].slot = h->trim_pin[k].slot;
            p->trim_pin[k].bytes = (double)h->trim_pin[k].bytes;
            p->trim_pin[k].below_top = (double)h->trim_pin[k].below_top;
        }
    }
}

/* Throughput across rounds: FALLING when the Mann-Kendall test finds a
 * decrease over the rounds (p < 0.01) and the median of the last third of
 * the rounds is below 80% of the median of the first third. Short rounds
 * are noisy; both conditions together keep noise from reading as a fall. */
static json_t *throughput(json_t *rounds)
{
    size_t n = json_array_size(rounds);
    json_t *t = json_object();
    double x[256], y[256], a[256], b[256];
    size_t k = 0;
    for (size_t i = 0; i < n && k < 256; i++) {
        json_t *r = json_array_get(rounds, i);
        x[k] = (double)i;
        y[k++] = json_number_value(json_object_get(r, "requests_per_s"));
    }
    const char *v = "UNKNOWN";
    struct mc_mk mk;
    if (k >= 4 && mc_mann_kendall(x, y, k, &mk) == 0) {
        size_t third = k / 3;
        memcpy(a, y, third * sizeof(double));
        memcpy(b, y + k - third, third * sizeof(double));
        double first = mc_median(a, third), last = mc_median(b, third);
        double p_dec = 1 - mk.p_inc;
        json_object_set_new(t, "p_decreasing", json_real(p_dec));
        v = p_dec < 0.01 && last < 0.8 * first ? "FALLING" : "STEADY";
    }
    json_object_set_new(t, "first", json_real(k ? y[0] : 0));
    json_object_set_new(t, "last", json_real(k ? y[k - 1] : 0));
    json_object_set_new(t, "verdict", json_string(v));
    return t;
}

int mc_session_run(const struct mc_session_opts *o, json_t **doc, struct mc_session_end *end)
{
    int *target_failed = &end->target_failed;
    struct session s;
    char rundir[PATH_MAX] = "", lib[PATH_MAX], exe[PATH_MAX];
    char env_buf[11][PATH_MAX + 64];
    char *env[12] = {0};
    int rc = MC_SESSION_OK, have_col = 0;
    struct mc_watchdog wd = {0, -1};
    struct mc_symbolizer *sym = NULL;
    memset(&s, 0, sizeof(s));
    s.o = o;
    s.stopped_by = NULL;
    *doc = NULL;
    memset(end, 0, sizeof(*end));
    stop_signal = 0;

    int r = o->attach_pid ? 0 : mc_resolve_exe(o->target[0], exe, sizeof(exe));
    if (r != 0) {
        mc_error("cannot run '%s': %s", o->target[0],
                 r == -EACCES   ? "not executable"
                 : r == -EISDIR ? "is a directory"
                                : strerror(-r));
        return MC_SESSION_NOT_STARTED;
    }
    int is_static = !o->attach_pid && mc_exe_is_static(exe);
    if (is_static)
        mc_error("'%s' is statically linked: the preload cannot work in it; reporting RSS only",
                 o->target[0]);
    if (find_preload(lib, sizeof(lib), o->attach_pid != 0) != 0) {
        mc_error("cannot find %s next to the memcreep command (set %s)",
                 o->attach_pid ? "libmemcreep-attach.so" : "libmemcreep.so",
                 o->attach_pid ? "MEMCREEP_ATTACH_LIB" : "MEMCREEP_LIB");
        return MC_SESSION_INTERNAL;
    }
    if ((r = make_run_dir(o->run_dir, rundir, sizeof(rundir))) != 0) {
        mc_error("cannot create a private run directory in %s: %s",
                 o->run_dir ? o->run_dir : "/dev/shm, $TMPDIR or /tmp", strerror(-r));
        return MC_SESSION_INTERNAL;
    }
    /* LD_PRELOAD keeps what the user had, after ours. */
    const char *old = getenv("LD_PRELOAD");
    snprintf(env_buf[0], sizeof(env_buf[0]), "LD_PRELOAD=%s%s%s", lib, old && *old ? ":" : "",
             old ? old : "");
    int nenv = 1 + mc_session_settings(o, rundir, env_buf + 1);
    if (o->python_malloc) snprintf(env_buf[nenv++], sizeof(env_buf[0]), "PYTHONMALLOC=malloc");
    for (int i = 0; i < nenv; i++)
        env[i] = env_buf[i];

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    /* An inherited ignore of SIGINT or SIGHUP (nohup, a background job)
     * is honoured, as the target honours it. */
    if (!mc_signal_inherited_ignored(SIGINT)) sigaction(SIGINT, &sa, NULL);
    if (!mc_signal_inherited_ignored(SIGHUP)) sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Not ignored (an inherited ignore would reap for us), and caught, so
     * that the end of a child cuts short the poll loop's sleep (sleeps are
     * never restarted; other calls are) instead of being seen up to 20 ms
     * later: a short program's run ends when it does. */
    sa.sa_handler = on_child;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    prctl(PR_SET_CHILD_SUBREAPER, 1);

    s.t0 = mc_now();
    s.end_at = o->duration > 0 ? s.t0 + o->duration : 0;
    long started = (long)time(NULL);
    if (o->attach_pid) {
        s.pid = o->attach_pid;
        if (!mc_proc_alive(s.pid)) {
            mc_error("cannot attach to PID %d: no such process", (int)s.pid);
            rc = MC_SESSION_NOT_STARTED;
            goto out;
        }
        /* The directory only: the process is not memcreep's to stop, and
         * its library detaches by itself once memcreep is gone. */
        mc_watchdog_start(&wd, 0, rundir, 0);
    } else {
        r = mc_spawn(o->target, env, &s.pid);
        if (r != 0) {
            mc_error("cannot run '%s': %s", o->target[0], strerror(-r));
            rc = MC_SESSION_NOT_STARTED;
            goto out;
        }
        /* Should memcreep be killed outright, this one stops the target's
         * whole group and removes the run directory (PR_SET_PDEATHSIG
         * reaches the target alone). */
        mc_watchdog_start(&wd, s.pid, rundir, o->grace);
    }
    mc_collector_init(&s.col, rundir, s.pid, s.t0);
    s.col.every_tick = o->metrics != NULL;
    mc_age_schedule(&s.col, 0, o->duration);
    /* A short run of set length: Python snapshots often enough for 30. */
    if (o->duration > 0 && o->duration < 15)
        s.col.py_min_gap = o->duration / 30 < 0.05 ? 0.05 : o->duration / 30;
    have_col = 1;
    s.next_progress = s.t0 + 1;
    if (o->attach_pid) {
        /* The outside view first: /proc, before anything enters it. */
        mc_collector_tick(&s.col, 1);
        if (!o->watch_only) {
            int a = mc_attach_tree(o, s.pid, lib, rundir, &s.paused);
            if (a == MC_ATTACH_TREE_GONE) {
                rc = MC_SESSION_NOT_STARTED;
                goto out;
            }
            if (a == MC_ATTACH_TREE_REFUSED) *target_failed = 1;
            if (a >= 0) s.attached_t = mc_now() - s.t0;
            s.attached_n = a > 0 ? a : 0;
            if (a > 0) mc_attach_settle(&s.col, 5);
        }
    }

    int drive_rc = 0;
    if (o->workload) {
        if (o->load && o->load->o.nurls) {
            struct mc_url u;
            char err[256];
            if (mc_url_parse(o->load->urls[0], &u, err, sizeof(err)) == 0 &&
                wait_listening(&s, &u) == -1 && !s.ended)
                mc_error("'%s' never listened on %s", o->target[0], u.authority);
        }
        if (!s.ended) drive_rc = drive_workload(&s);
    } else if (o->load) {
        drive_rc = drive_load(&s);
    } else {
        watch(&s);
    }
    if (drive_rc != 0 && !s.ended) *target_failed = 1;
    if (o->tty) fputs("\r\033[K", stderr);

    if (!s.ended) {
        mc_collector_tick(&s.col, 1);
        mc_metrics_update(o->metrics, &s.col, s.ld ? s.col.external_work : -1, mc_now() - s.t0, 1);
        mc_age_final(&s.col);
        mc_collector_freeze(&s.col);
        if (s.ld) s.load_summary = mc_load_summary_json(mc_load_stats(s.ld));
        if (o->attach_pid) {
            /* It keeps running: the hooks come out, nothing is trimmed. */
            mc_attach_detach_all(&s.col, 5);
        } else {
            trim_probe(&s);
            /* It may have ended by itself during the probe (reap read how). */
            if (!s.ended) mc_child_stop(s.pid, o->grace, &s.signaled, &s.status, &s.sig);
            s.ended = 1;
        }
        if (!s.stopped_by) s.stopped_by = "signal";
    } else if (!s.stopped_by) {
        s.stopped_by = "exit";
    }
    if (!o->attach_pid)
        mc_collector_root_ended(&s.col, s.signaled ? MC_END_SIGNALED : MC_END_EXITED, s.status,
                                s.sig);
    else if (s.vanished)
        mc_collector_root_ended(&s.col, MC_END_VANISHED, 0, 0);
    mc_collector_tick(&s.col, 1);
    if (!o->attach_pid) mc_group_cleanup(s.pid, o->grace);
    mc_collector_close(&s.col);

    struct mc_proc *root = mc_collector_root(&s.col);
    double ran = mc_now() - s.t0;
    if (o->attach_pid) {
        /* How an attached process ended is not memcreep's to judge. */
    } else if (!s.signaled && s.status != 0 && !strcmp(s.stopped_by, "exit") &&
               ran < 2 * o->interval + 0.5 && s.col.tree.clk.n <= 3) {
        mc_error("'%s' exited at once with status %d; nothing to measure", o->target[0], s.status);
        *target_failed = 1;
    } else if (!strcmp(s.stopped_by, "exit") && (s.signaled || s.status != 0)) {
        /* It failed by itself after it ran: a CI job wrapping it must fail. */
        end->failed_status = s.signaled ? 128 + s.sig : s.status;
    }
    if (s.workload_status && !end->failed_status) end->failed_status = s.workload_status;

    unsetenv("DEBUGINFOD_URLS"); /* symbols come from local files only */
    sym = mc_symbolizer_new();
    for (size_t i = 0; sym && i < s.col.nprocs; i++)
        mc_sites_merge(s.col.procs[i], sym);
    /* An attached process is named by its command line. */
    char cmdline[4096], *args[64];
    int nargs = 0;
    if (o->attach_pid) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)s.pid);
        FILE *f = fopen(path, "re");
        size_t n = f ? fread(cmdline, 1, sizeof(cmdline) - 1, f) : 0;
        if (f) fclose(f);
        cmdline[n] = 0;
        for (size_t i = 0; i < n && nargs < 63; i += strlen(cmdline + i) + 1)
            args[nargs++] = cmdline + i;
        if (!nargs) {
            snprintf(cmdline, sizeof(cmdline), "%s", root ? root->exe : "?");
            args[nargs++] = cmdline;
        }
        args[nargs] = NULL;
    }
    struct mc_run_info ri = {.argc = o->attach_pid ? nargs : o->target_argc,
                             .argv = o->attach_pid ? args : o->target,
                             .interval = o->interval,
                             .min_growth = (double)o->min_growth,
                             .top = 50,
                             .stopped_by = s.stopped_by,
                             .static_target = is_static || !(root && root->has_map),
                             .started = started,
                             .sample_bytes = o->sample_bytes};
    *doc = mc_result_build(&s.col, &ri, sym);
    if (!*doc) {
        mc_error("out of memory while building the result");
        rc = MC_SESSION_INTERNAL;
        goto out;
    }
    if (o->attach_pid) {
        json_t *a = json_object();
        json_object_set_new(a, "pid", json_integer(s.pid));
        json_object_set_new(a, "watch_only", json_boolean(o->watch_only));
        json_object_set_new(a, "inside", json_boolean(root && root->has_map));
        json_object_set_new(a, "attached_s",
                            s.attached_t > 0 ? json_real(s.attached_t) : json_null());
        json_object_set_new(a, "ended", json_boolean(s.vanished));
        json_object_set_new(a, "processes", json_integer(s.attached_n));
        json_object_set_new(a, "paused_ms", json_real(s.paused * 1000));
        json_object_set_new(*doc, "attach", a);
    }
    if (s.ld) {
        json_t *load = json_object();
        json_object_set_new(load, "url", json_string(o->load->urls[0]));
        json_object_set_new(load, "proto", json_string(o->proto == MC_PROTO_H2 ? "h2" : "h1"));
        json_object_set_new(load, "connections", json_integer(o->load->o.conns));
        json_object_set_new(load, "new_conn", json_boolean(o->load->o.new_conn));
        json_object_set_new(load, "summary",
                            s.load_summary ? json_incref(s.load_summary)
                                           : mc_load_summary_json(mc_load_stats(s.ld)));
        json_object_set_new(load, "throughput", throughput(s.rounds));
        json_object_set_new(load, "rounds", json_incref(s.rounds));
        json_object_set_new(*doc, "load", load);
    }
    struct statvfs vfs;
    int full = statvfs(rundir, &vfs) == 0 && vfs.f_bavail * vfs.f_frsize < 256 * 1024;
    if (full)
        mc_error(
            "the run directory %s is full: what did not fit was not recorded (give it room, or "
            "another place with --run-dir; docs/run.md)",
            rundir);
    if (o->attach_pid) {
        /* Refusals were said as they happened. */
    } else if (!is_static && !(root && root->has_map) && !*target_failed) {
        if (!full)
            mc_error("the preload did not load into '%s' (setuid, or LD_PRELOAD removed?): RSS "
                     "only",
                     o->target[0]);
        *target_failed = 1;
    } else if (is_static) {
        *target_failed = 1;
    }
out:
    if (s.rounds) json_decref(s.rounds);
    if (s.load_summary) json_decref(s.load_summary);
    if (s.ld) mc_load_free(s.ld);
    mc_symbolizer_free(sym);
    if (have_col) mc_collector_free(&s.col);
    mc_watchdog_done(&wd);
    if (rundir[0]) {
        print_warnings(rundir);
        remove_run_dir(rundir);
    }
    return rc;
}
