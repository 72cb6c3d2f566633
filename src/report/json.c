/* json.c - builds, saves and loads the result document (result.h).
 *
 * Analysis happens here too, at build time: each series gets its verdict
 * and slopes (analysis/verdict.c) as it is written out, so the document
 * carries the evidence (series, slope, p-values) next to each verdict. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "analysis/findings.h"
#include "analysis/metric_map.h"
#include "analysis/rules.h"
#include "analysis/stats.h"
#include "analysis/verdict.h"
#include "report/jget.h"
#include "report/result.h"

static const char *end_names[] = {"running", "exited", "signaled", "exec", "vanished", "stopped"};

static json_t *farray(const double *v, uint32_t n)
{
    json_t *a = json_array();
    for (uint32_t i = 0; i < n; i++)
        json_array_append_new(a, json_real(round(v[i] * 1000) / 1000));
    return a;
}

static json_t *iarray(const int64_t *v, uint32_t n)
{
    json_t *a = json_array();
    for (uint32_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

/* Whether the work axis moved: then growth is also stated per unit. */
static int has_work(const struct mc_points *s)
{
    uint32_t n = s->clk.n;
    return n >= 2 && s->work[n - 1] > s->work[0];
}

static void to_minutes(const struct mc_points *s, double *x)
{
    for (uint32_t i = 0; i < MC_SERIES_MAX; i++)
        x[i] = i < s->clk.n ? s->t[i] / 60.0 : 0;
}

/* Slope of y against x, 0 when undefined. */
static double slope_of(const double *x, const double *y, uint32_t n)
{
    double s = 0;
    if (n < 2 || mc_theil_sen(x, y, n, &s, NULL) != 0) return 0;
    return s;
}

/* A metric (RSS, live heap...) with its verdict and slopes. */
static json_t *metric(const struct mc_points *s, const double *y, double min_growth, int work)
{
    double xm[MC_SERIES_MAX];
    uint32_t n = s->clk.n;
    to_minutes(s, xm);
    struct mc_trend_opts o = {min_growth, 0.01};
    struct mc_trend tr;
    mc_trend_classify(work ? s->work : xm, y, n, &o, &tr);
    json_t *m = json_object();
    json_object_set_new(m, "verdict", json_string(mc_verdict_name(tr.verdict)));
    json_object_set_new(m, "start", json_real(n ? y[0] : 0));
    json_object_set_new(m, "end", json_real(n ? y[n - 1] : 0));
    json_object_set_new(m, "per_min", json_real(slope_of(xm, y, n)));
    if (work) json_object_set_new(m, "per_unit", json_real(tr.slope));
    json_object_set_new(m, "p_value", json_real(tr.p));
    json_object_set_new(m, "net_growth", json_real(tr.net));
    return m;
}

/* ---- stacks ---- */

/* Functions that only pass an allocation through: the site of a stack is
 * the first frame that is none of these. */
static int is_wrapper(const char *fn)
{
    static const char *prefixes[] = {"operator new",
                                     "__libc_",
                                     "strdup",
                                     "strndup",
                                     "__strdup",
                                     "__strndup",
                                     "xmalloc",
                                     "xcalloc",
                                     "xrealloc",
                                     "xstrdup",
                                     "g_malloc",
                                     "g_realloc",
                                     "g_strdup",
                                     "asprintf",
                                     "vasprintf",
                                     "__vasprintf",
                                     "_IO_",
                                     "reallocarray",
                                     "__gnu_cxx::new_allocator",
                                     "std::__new_allocator",
                                     "std::allocator",
                                     "calloc",
                                     "malloc",
                                     "realloc",
                                     "__rtld_calloc",
                                     "__rtld_malloc"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (!strncmp(fn, prefixes[i], strlen(prefixes[i]))) return 1;
    return 0;
}

struct ranked {
    uint32_t slot;
    struct mc_trend tr;
    double rank;
};

static int by_rank(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->tr.verdict != y->tr.verdict) return (int)y->tr.verdict - (int)x->tr.verdict;
    return (x->rank < y->rank) - (x->rank > y->rank);
}

/* Whether a Python file is the program's own: not the standard library,
 * not an installed package, not frozen or generated code. */
static int own_python_file(const char *f)
{
    return *f && *f != '<' && strncmp(f, "/usr/lib/python", 15) &&
           strncmp(f, "/usr/local/lib/python", 21) && !strstr(f, "/site-packages/") &&
           !strstr(f, "/dist-packages/");
}

/* A Python frame (MC_IS_PYFRAME) as a frame object: function, file and
 * line from the process' code table. */
static json_t *python_frame_json(struct mc_proc *p, uint64_t f)
{
    char name[128] = "??", file[256] = "";
    if (mc_map_pycode(&p->map, MC_PYFRAME_SLOT(f), name, sizeof(name), file, sizeof(file)) != 0)
        strcpy(name, "??");
    json_t *o = json_object();
    json_object_set_new(o, "addr", json_string("python"));
    json_object_set_new(o, "offset", json_string("0x0"));
    json_object_set_new(o, "function", json_string(name));
    json_object_set_new(o, "file", json_string(file));
    json_object_set_new(o, "line", json_integer(MC_PYFRAME_LINE(f)));
    json_object_set_new(o, "module", json_string("python"));
    json_object_set_new(o, "inlined", json_false());
    json_object_set_new(o, "python", json_true());
    return o;
}

/* The frames of a stack, symbolized. *site is the frame to name the stack
 * by: in a Python stack the innermost frame in the program's own files
 * (else the innermost Python frame), *py the innermost Python frame (where
 * the allocation was made, in a library maybe), -1 without one; in a
 * native stack the first frame that is not an allocator wrapper. */
static json_t *frames_json(struct mc_proc *p, uint32_t slot, struct mc_symbolizer *sym, int *site,
                           int *py, int *nat)
{
    json_t *a = json_array();
    const uint64_t *f;
    const struct mc_shm_stack *st = mc_map_stack(&p->map, slot);
    uint32_t depth = st ? mc_map_frames(&p->map, st, &f) : 0;
    const struct mc_shm_module *mods = mc_proc_modules(p);
    uint64_t nmods = p->nmods;
    int native = -1, own = -1;
    *py = -1;
    for (uint32_t i = 0; i < depth; i++) {
        if (MC_IS_PYFRAME(f[i])) {
            json_t *o = python_frame_json(p, f[i]);
            if (*py < 0) *py = (int)json_array_size(a);
            if (own < 0 && own_python_file(mc_jstr(o, "file"))) own = (int)json_array_size(a);
            json_array_append_new(a, o);
            continue;
        }
        struct mc_frame fr[8];
        char addr[32], off[32];
        int nf = mc_symbolize(sym, mods, nmods, f[i], fr, 8);
        for (int k = 0; k < nf; k++) {
            snprintf(addr, sizeof(addr), "0x%llx", (unsigned long long)fr[k].addr);
            snprintf(off, sizeof(off), "0x%llx", (unsigned long long)fr[k].offset);
            json_t *o = json_object();
            json_object_set_new(o, "addr", json_string(addr));
            json_object_set_new(o, "offset", json_string(off));
            json_object_set_new(o, "function", json_string(fr[k].function));
            json_object_set_new(o, "file", json_string(fr[k].file));
            json_object_set_new(o, "line", json_integer(fr[k].line));
            json_object_set_new(o, "module", json_string(fr[k].module));
            json_object_set_new(o, "inlined", json_boolean(fr[k].inlined));
            if (native < 0 && strcmp(fr[k].function, "??") && !is_wrapper(fr[k].function))
                native = (int)json_array_size(a);
            json_array_append_new(a, o);
        }
    }
    *site = own >= 0 ? own : *py >= 0 ? *py : native;
    if (nat) *nat = *py >= 0 && native >= 0 && native < *py ? native : -1;
    if (*site < 0 && depth) *site = 0;
    return a;
}

void mc_result_site(struct mc_proc *p, uint32_t slot, struct mc_symbolizer *sym, char *buf,
                    size_t len)
{
    int site, py;
    json_t *a = frames_json(p, slot, sym, &site, &py, NULL);
    json_t *f = a && site >= 0 ? json_array_get(a, (size_t)site) : NULL;
    if (f)
        mc_report_frame_text(f, buf, len);
    else
        snprintf(buf, len, "[stack %u]", slot);
    json_decref(a);
}

void mc_result_set_trend(json_t *o, const struct mc_trend *tr)
{
    json_object_set_new(o, "verdict", json_string(mc_verdict_name(tr->verdict)));
    json_object_set_new(o, "net_growth", json_real(tr->net));
    json_object_set_new(o, "p_value", json_real(tr->p));
    json_object_set_new(o, "p_floor", json_real(tr->p_floor));
    json_object_set_new(o, "confidence", json_real(1 - tr->p));
}

static json_t *stack_json(struct mc_proc *p, const struct ranked *r, struct mc_symbolizer *sym,
                          int work)
{
    const struct mc_points *s = &p->pts;
    const struct mc_stack_series *ss = p->stk[r->slot];
    uint32_t n = s->clk.n;
    double xm[MC_SERIES_MAX], yb[MC_SERIES_MAX], yc[MC_SERIES_MAX];
    to_minutes(s, xm);
    for (uint32_t i = 0; i < n; i++) {
        yb[i] = (double)ss->bytes[i];
        yc[i] = (double)ss->count[i];
    }
    const struct mc_stack_value *st = r->slot < p->stk_cap ? &p->vals[r->slot] : NULL;
    json_t *o = json_object();
    int site = -1, py = -1, nat = -1;
    json_object_set_new(o, "id", json_integer(r->slot));
    mc_result_set_trend(o, &r->tr);
    json_object_set_new(o, "bytes_per_min", json_real(slope_of(xm, yb, n)));
    json_object_set_new(o, "objects_per_min", json_real(slope_of(xm, yc, n)));
    if (work) {
        json_object_set_new(o, "bytes_per_unit", json_real(slope_of(s->work, yb, n)));
        json_object_set_new(o, "objects_per_unit", json_real(slope_of(s->work, yc, n)));
    }
    json_object_set_new(o, "live_bytes", json_integer(n ? ss->bytes[n - 1] : 0));
    json_object_set_new(o, "live_count", json_integer(n ? ss->count[n - 1] : 0));
    if (ss->sample_mean)
        json_object_set_new(o, "sample_bytes", json_integer((json_int_t)ss->sample_mean));
    if (ss->merged) json_object_set_new(o, "addresses", json_integer((json_int_t)ss->merged + 1));
    if (st) {
        json_object_set_new(o, "allocs", json_integer((json_int_t)st->allocs));
        json_object_set_new(o, "alloc_bytes", json_integer((json_int_t)st->alloc_bytes));
    }
    json_t *fr = r->slot == MC_STACK_OVERFLOW ? json_array()
                                              : frames_json(p, r->slot, sym, &site, &py, &nat);
    if (r->slot == MC_STACK_OVERFLOW) site = py = nat = -1;
    json_object_set_new(o, "site", json_integer(site));
    /* Where Python made it, when the program's own line is further out:
     * "allocated in httpcore/_sync/http11.py:179". */
    if (py >= 0 && py != site) json_object_set_new(o, "allocated_in", json_integer(py));
    /* The native function below the Python frames that allocated. */
    if (nat >= 0) json_object_set_new(o, "native_site", json_integer(nat));
    json_object_set_new(o, "frames", fr);
    json_t *ser = json_object();
    json_object_set_new(ser, "bytes", iarray(ss->bytes, n));
    json_object_set_new(ser, "count", iarray(ss->count, n));
    json_object_set_new(o, "series", ser);
    return o;
}

/* Classifies every stack of a process and keeps the top ones: all that
 * are not STEADY first, then the steady ones that grew most. */
static json_t *stacks_json(struct mc_proc *p, const struct mc_run_info *ri,
                           struct mc_symbolizer *sym, int work, int *creeping)
{
    const struct mc_points *s = &p->pts;
    uint32_t n = s->clk.n;
    double xm[MC_SERIES_MAX], y[MC_SERIES_MAX];
    struct ranked *r = calloc(p->stk_cap ? p->stk_cap : 1, sizeof(*r));
    size_t nr = 0;
    json_t *a = json_array();
    *creeping = 0;
    if (!r) return a;
    to_minutes(s, xm);
    for (uint32_t slot = 0; slot < p->stk_cap; slot++) {
        const struct mc_stack_series *ss = p->stk[slot];
        if (!ss) continue;
        for (uint32_t i = 0; i < n; i++)
            y[i] = (double)ss->bytes[i];
        struct ranked *e = &r[nr];
        e->slot = slot;
        mc_judge(work ? s->work : xm, y, n,
                 mc_sampled_min_growth(ri->min_growth, (double)ss->sample_mean, y, n), &e->tr);
        e->rank = e->tr.net != 0 ? e->tr.net : (n ? y[n - 1] : 0) / 1e9;
        if (e->tr.verdict == MC_V_CREEP) (*creeping)++;
        if (n && (e->tr.net > 0 || y[n - 1] > 0)) nr++;
    }
    qsort(r, nr, sizeof(*r), by_rank);
    size_t keep = ri->top > 0 && (size_t)ri->top < nr ? (size_t)ri->top : nr;
    for (size_t i = 0; i < keep; i++)
        json_array_append_new(a, stack_json(p, &r[i], sym, work));
    free(r);
    return a;
}

static json_t *points_json(const struct mc_points *s)
{
    uint32_t n = s->clk.n;
    json_t *o = json_object();
    json_object_set_new(o, "t", farray(s->t, n));
    json_object_set_new(o, "work", farray(s->work, n));
#define MC_SERIES_JSON(key, field, label, judged, preload, row)                                    \
    json_object_set_new(o, #key, farray(s->field, n));
    MC_METRIC_MAP(MC_SERIES_JSON)
#undef MC_SERIES_JSON
    return o;
}

/* The metrics of a series set: every judged series of the table
 * (analysis/metric_map.h), with the least growth of its kind; those of the
 * preload only when mapped. */
json_t *mc_result_metrics(const struct mc_points *s, double min_growth, int mapped)
{
    int work = has_work(s);
    json_t *m = json_object();
    double least[] = {
        [MC_J_NONE] = 0,
        [MC_J_PAGES] = min_growth > MC_RSS_MIN_GROWTH ? min_growth : MC_RSS_MIN_GROWTH,
        /* The part of the heap that is sampled has its noise (verdict.c). */
        [MC_J_HEAP] = mc_sampled_min_growth(min_growth, s->sample_mean, s->heap_sampled, s->clk.n),
        [MC_J_COUNT] = MC_RES_MIN_GROWTH};
#define MC_METRIC_JSON(key, field, label, judged, preload, row)                                    \
    if (MC_J_##judged != MC_J_NONE && (mapped || !preload)) {                                      \
        json_t *x = metric(s, s->field, least[MC_J_##judged], work);                               \
        if (MC_J_##judged == MC_J_COUNT) json_object_set_new(x, "unit", json_string("count"));     \
        json_object_set_new(m, #key, x);                                                           \
    }
    MC_METRIC_MAP(MC_METRIC_JSON)
#undef MC_METRIC_JSON
    return m;
}

/* A new finding in findings (result.h). */
json_t *mc_result_add_finding(json_t *findings, enum mc_finding_kind k, pid_t pid)
{
    const struct mc_finding_def *d = &mc_findings[k];
    json_t *f = json_object();
    json_object_set_new(f, "code", json_string(d->code));
    json_object_set_new(f, "kind", json_string(d->title));
    json_object_set_new(f, "severity", json_string(mc_severity_name(d->severity)));
    json_object_set_new(f, "metric", json_string(d->metric));
    json_object_set_new(f, "pid", json_integer(pid));
    json_array_append_new(findings, f);
    return f;
}

/* What the stacks under a finding are ranked by. */
enum top_by {
    TOP_CONNECTS, /* TCP connections started, cumulative */
    TOP_THREADS,  /* threads started, cumulative */
    TOP_UNJOINED, /* threads ended and not joined, now */
    TOP_FDS,      /* growth of the descriptors it opened that are open */
    TOP_SOCKETS,  /* the same, stacks that opened sockets only */
};

static json_t *top_stacks(struct mc_proc *p, struct mc_symbolizer *sym, enum top_by by);

/* FD CREEP stopped by the limit (analysis/rules.c). */
static int descriptors_at_limit(const struct mc_proc *p)
{
    return mc_rule_fds_at_limit(p->pts.fds, p->pts.clk.n, p->fd_limit);
}

/* Resource findings of a process: FD, SOCKET and THREAD CREEP. */
static void resource_findings(json_t *findings, json_t *proc, json_t *m, struct mc_proc *p,
                              struct mc_symbolizer *sym)
{
    const enum mc_finding_kind *kinds = mc_metric_findings;
    for (size_t i = 0; i < MC_METRIC_FINDINGS; i++) {
        json_t *x = json_object_get(m, mc_findings[kinds[i]].metric);
        /* Descriptors that grew until the limit stopped them level off: a
         * plateau at the limit is a leak that ran out of room, not a cache
         * that filled (the program's next open fails with EMFILE). */
        int at_limit = i == 0 && descriptors_at_limit(p);
        if (!at_limit && strcmp(json_string_value(json_object_get(x, "verdict")) ?: "", "CREEP"))
            continue;
        json_t *f = mc_result_add_finding(findings, kinds[i], p->pid);
        json_object_set(f, "evidence", x);
        if (at_limit) json_object_set_new(f, "limit", json_real(p->fd_limit));
        /* The code responsible, as the preload counted it: the stacks that
         * start the threads, or that opened the descriptors still open. */
        static const enum top_by by[] = {TOP_FDS, TOP_SOCKETS, TOP_SOCKETS, TOP_THREADS,
                                         TOP_UNJOINED};
        if (p->has_map) json_object_set_new(f, "stacks", top_stacks(p, sym, by[i]));
        /* Sockets: which peers and in which state they pile up. */
        if (by[i] == TOP_SOCKETS) json_object_set(f, "peers", json_object_get(proc, "tcp_peers"));
    }
}

static const char *fd_kind_names[MC_FD_KINDS] = {"tcp",  "udp",  "unix",  "socket",
                                                 "file", "pipe", "event", "other"};

/* Open descriptors by kind, as counted in an array of MC_FD_KINDS. */
static json_t *fd_kinds_json(const int64_t *live)
{
    json_t *o = json_object();
    for (int k = 0; k < MC_FD_KINDS; k++)
        if (live[k]) json_object_set_new(o, fd_kind_names[k], json_integer(live[k]));
    return o;
}

/* A stack's value for ranking under by; 0 leaves it out. */
static int64_t top_value(struct mc_proc *p, uint32_t slot, enum top_by by)
{
    const struct mc_shm_stack *st = mc_map_stack(&p->map, slot);
    const struct mc_shm_stack_ext *x = mc_map_stack_ext(&p->map, slot);
    const struct mc_stack_series *ss = slot < p->stk_cap ? p->stk[slot] : NULL;
    uint32_t n = p->pts.clk.n;
    switch (by) {
    case TOP_CONNECTS:
        return (int64_t)__atomic_load_n(&st->connects, __ATOMIC_RELAXED);
    case TOP_THREADS:
        return __atomic_load_n(&st->threads, __ATOMIC_RELAXED);
    case TOP_UNJOINED:
        return __atomic_load_n(&x->threads_unjoined, __ATOMIC_RELAXED);
    case TOP_SOCKETS:
        if (!x->fd_live[MC_FD_TCP] && !x->fd_live[MC_FD_UDP] && !x->fd_live[MC_FD_UNIX] &&
            !x->fd_live[MC_FD_SOCKET])
            return 0;
        /* fall through */
    case TOP_FDS:
        return ss && n ? ss->fds[n - 1] - ss->fds[0] : 0;
    }
    return 0;
}

static const char *top_what[] = {"connections started", "threads started",
                                 "threads ended, not joined", "descriptors opened, still open",
                                 "sockets opened, still open"};

/* The three stacks that rank highest by the given measure, with their
 * frames and the value under "count"; for descriptors also their rate and
 * kinds. */
static json_t *top_stacks(struct mc_proc *p, struct mc_symbolizer *sym, enum top_by by)
{
    int64_t best[3] = {0, 0, 0};
    uint32_t slot[3] = {0, 0, 0};
    uint64_t listed = mc_map_stack_count(&p->map);
    for (uint64_t i = 0; i < listed; i++) {
        int64_t s = mc_map_stack_slot(&p->map, i);
        if (s < 0 || !mc_map_stack(&p->map, (uint32_t)s)) continue;
        int64_t c = top_value(p, (uint32_t)s, by);
        for (int k = 0; k < 3; k++)
            if (c > best[k]) {
                for (int j = 2; j > k; j--) {
                    best[j] = best[j - 1];
                    slot[j] = slot[j - 1];
                }
                best[k] = c;
                slot[k] = (uint32_t)s;
                break;
            }
    }
    json_t *stacks = json_array();
    int work = has_work(&p->pts);
    /* A stack far below the first (under 5% of it) is not what grows. */
    for (int k = 0; k < 3 && best[k] > 0 && best[k] * 20 >= best[0]; k++) {
        int site, py;
        json_t *e = json_object();
        json_object_set_new(e, "count", json_integer((json_int_t)best[k]));
        json_object_set_new(e, "what", json_string(top_what[by]));
        if (by == TOP_FDS || by == TOP_SOCKETS) {
            const struct mc_stack_series *ss = p->stk[slot[k]];
            const struct mc_shm_stack_ext *x = mc_map_stack_ext(&p->map, slot[k]);
            double xm[MC_SERIES_MAX], y[MC_SERIES_MAX];
            uint32_t n = p->pts.clk.n;
            int64_t live[MC_FD_KINDS];
            to_minutes(&p->pts, xm);
            for (uint32_t i = 0; i < n; i++)
                y[i] = (double)ss->fds[i];
            for (int i = 0; i < MC_FD_KINDS; i++)
                live[i] = __atomic_load_n(&x->fd_live[i], __ATOMIC_RELAXED);
            json_object_set_new(e, "open", json_integer(ss->fds[n - 1]));
            json_object_set_new(e, "per_min", json_real(slope_of(xm, y, n)));
            if (work) json_object_set_new(e, "per_unit", json_real(slope_of(p->pts.work, y, n)));
            json_object_set_new(e, "kinds", fd_kinds_json(live));
        }
        json_object_set_new(e, "frames", frames_json(p, slot[k], sym, &site, &py, NULL));
        json_object_set_new(e, "site", json_integer(site));
        json_array_append_new(stacks, e);
    }
    return stacks;
}

/* CONNECTION CHURN (analysis/rules.c), with the stacks that connect, even
 * when nothing leaks. */
static void churn(json_t *findings, json_t *o, struct mc_proc *p, struct mc_symbolizer *sym)
{
    const struct mc_points *s = &p->pts;
    uint32_t n = s->clk.n;
    json_t *m = json_object_get(json_object_get(o, "metrics"), "connects");
    json_t *pu = json_object_get(m, "per_unit");
    if (!p->has_map || n < 2) return;
    struct mc_churn ch = {.made = s->connects[n - 1] - s->connects[0],
                          .secs = s->t[n - 1] - s->t[0],
                          .has_unit = pu != NULL,
                          .per_unit = pu ? json_number_value(pu) : 0};
    for (uint32_t i = 0; i < n; i++)
        ch.open_mean += s->tcp_est[i] / n;
    if (!mc_rule_churn(&ch)) return;
    json_t *f = mc_result_add_finding(findings, MC_F_CONNECTION_CHURN, p->pid);
    json_object_set(f, "evidence", m);
    json_object_set_new(f, "connections", json_real(ch.made));
    json_object_set_new(f, "per_s", json_real(ch.per_s));
    json_object_set_new(f, "open_mean", json_real(ch.open_mean));
    json_object_set_new(f, "lifetime_s", json_real(ch.lifetime_s));
    if (pu && json_number_value(pu) > 0)
        json_object_set_new(f, "units_per_connection", json_real(1 / json_number_value(pu)));
    json_object_set_new(f, "stacks", top_stacks(p, sym, TOP_CONNECTS));
}

/* ALLOCATOR RETENTION (analysis/rules.c): RSS stays up although nothing
 * leaks. The malloc_trim(0) probe says how much of it the allocator could
 * give back. */

static void retention(json_t *findings, json_t *o, struct mc_proc *p, struct mc_symbolizer *sym)
{
    if (!p->trim_asked) return;
    json_t *t = json_object();
    json_object_set_new(t, "served", json_boolean(p->trim_served));
    json_object_set_new(t, "at_rest", json_boolean(p->trim_rest_s > 0));
    json_object_set_new(t, "rest_s", json_real(p->trim_rest_s));
    json_object_set_new(t, "by", json_string(p->trim_by_rest ? "rest thread" : "allocation"));
    json_object_set_new(t, "rss_before", json_real(p->trim_rss_before));
    json_object_set_new(t, "rss_after", json_real(p->trim_rss_after));
    json_object_set_new(t, "recovered", json_real(p->trim_rss_before - p->trim_rss_after));
    json_object_set_new(t, "allocator_free", json_real(p->trim_free_before));
    json_object_set_new(t, "allocator_free_after", json_real(p->trim_free_after));
    json_object_set_new(t, "live_heap", json_real(p->trim_heap));
    /* What holds the top of the brk heap: while it lives, free() cannot
     * shrink the heap by itself, however much is free below it. */
    json_t *top = json_array();
    for (int k = 0; k < p->trim_npins; k++) {
        int site, py;
        json_t *e = json_object();
        json_object_set_new(e, "bytes", json_real(p->trim_pin[k].bytes));
        json_object_set_new(e, "below_top", json_real(p->trim_pin[k].below_top));
        json_object_set_new(e, "frames",
                            frames_json(p, p->trim_pin[k].slot, sym, &site, &py, NULL));
        json_object_set_new(e, "site", json_integer(site));
        json_array_append_new(top, e);
    }
    json_object_set_new(t, "heap_top", top);
    json_object_set_new(o, "malloc_trim", t);
    if (!mc_rule_retention(p->trim_free_before, p->trim_heap)) return;
    json_object_set(mc_result_add_finding(findings, MC_F_ALLOCATOR_RETENTION, p->pid), "evidence",
                    t);
}

/* The peers holding most of a process's TCP sockets at its last reading. */
static json_t *peers_json(const struct mc_proc_res *r)
{
    json_t *a = json_array();
    for (int i = 0; i < r->npeers; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "peer", json_string(r->peers[i].addr));
        json_object_set_new(o, "state", json_string(r->peers[i].state));
        json_object_set_new(o, "count", json_integer(r->peers[i].count));
        json_array_append_new(a, o);
    }
    return a;
}

/* What the descriptor hooks counted for a process, at the end. */
static json_t *descriptors_json(const struct mc_shm_header *h)
{
    int64_t live[MC_FD_KINDS];
    for (int k = 0; k < MC_FD_KINDS; k++)
        live[k] = (int64_t)mc_map_load((const uint64_t *)&h->fd_live[k]);
    json_t *o = json_object();
    json_object_set_new(o, "open", fd_kinds_json(live));
    json_object_set_new(o, "opened", json_integer((json_int_t)mc_map_load(&h->fd_opened)));
    json_object_set_new(o, "inherited", json_integer((json_int_t)mc_map_load(&h->fd_inherited)));
    json_object_set_new(o, "untracked", json_integer((json_int_t)mc_map_load(&h->fd_lost)));
    json_object_set_new(
        o, "threads_unjoined",
        json_integer((json_int_t)mc_map_load((const uint64_t *)&h->threads_unjoined)));
    return o;
}

/* ---- Python (preload/python.c) ---- */

#define PY_MIN_GROWTH   50.0  /* objects: a type must grow by this much to creep */
#define PY_GARBAGE_MIN  100.0 /* cycle garbage worth reporting, objects */
#define PY_GARBAGE_RATE 0.1   /* ... and per unit of work */
#define PY_TOP          40

struct py_rank {
    uint32_t i;
    double key;
    struct mc_trend tr;
    int builtin; /* a builtin type (list, dict): after the program's and its libraries' */
};

/* Verdict first, then the program's and libraries' types before builtin
 * containers (a list grows because what it holds is kept), then growth. */
static int by_key(const void *a, const void *b)
{
    const struct py_rank *x = a, *y = b;
    if (x->tr.verdict != y->tr.verdict) return (int)y->tr.verdict - (int)x->tr.verdict;
    if (x->builtin != y->builtin) return x->builtin - y->builtin;
    return (x->key < y->key) - (x->key > y->key);
}

/* Growth by Python line from the tracing windows: bytes and objects per
 * unit of work and per minute of traced time, largest first (at most
 * PY_TOP). Adds "lines", "trace_windows", "traced_s" to py; returns the
 * lines array (owned by py). */
struct py_line {
    const struct mc_shm_pyline *l;
    int64_t bytes;
};

static int by_bytes(const void *a, const void *b)
{
    const struct py_line *x = a, *y = b;
    return (x->bytes < y->bytes) - (x->bytes > y->bytes);
}

static json_t *python_lines(json_t *py, const struct mc_shm_header *h, const struct mc_map *m)
{
    uint64_t n;
    const struct mc_shm_pyline *t = mc_map_pylines(m, 0, &n);
    double work = (double)mc_map_load(&h->py_trace_work);
    double secs = (double)mc_map_load(&h->py_trace_ns) / 1e9;
    json_t *a = json_array();
    struct py_line *v = calloc(n ? n : 1, sizeof(*v));
    for (uint64_t i = 0; v && i < n; i++) {
        v[i].l = &t[i];
        v[i].bytes = __atomic_load_n(&t[i].bytes, __ATOMIC_RELAXED);
    }
    if (v) qsort(v, n, sizeof(*v), by_bytes);
    for (uint64_t i = 0; v && i < n && i < PY_TOP; i++) {
        if (v[i].bytes <= 0) break;
        char where[MC_PY_WHERE];
        memcpy(where, v[i].l->where, sizeof(where));
        where[sizeof(where) - 1] = 0;
        double count = (double)__atomic_load_n(&v[i].l->count, __ATOMIC_RELAXED);
        json_t *e = json_object();
        json_object_set_new(e, "line", json_string(where));
        json_object_set_new(e, "bytes", json_integer(v[i].bytes));
        json_object_set_new(e, "objects", json_real(count));
        if (work > 0) {
            json_object_set_new(e, "bytes_per_unit", json_real((double)v[i].bytes / work));
            json_object_set_new(e, "objects_per_unit", json_real(count / work));
        }
        if (secs > 0)
            json_object_set_new(e, "bytes_per_min", json_real((double)v[i].bytes / secs * 60));
        json_array_append_new(a, e);
    }
    free(v);
    json_object_set_new(py, "trace_windows", json_integer((json_int_t)mc_map_load(&h->py_windows)));
    json_object_set_new(py, "traced_s", json_real(secs));
    json_object_set_new(py, "traced_work", json_real(work));
    json_object_set_new(py, "lines", a);
    return a;
}

/* Open sockets made while traced, by the Python line that made them, into
 * py.sockets; the descriptor and socket findings of the process get the
 * top three (where the sockets that pile up come from). */
static void python_sockets(json_t *findings, json_t *py, const struct mc_map *m, pid_t pid)
{
    uint64_t n;
    const struct mc_shm_pyline *t = mc_map_pylines(m, 1, &n);
    struct py_line *v = calloc(n ? n : 1, sizeof(*v));
    json_t *a = json_array();
    for (uint64_t i = 0; v && i < n; i++) {
        v[i].l = &t[i];
        v[i].bytes = __atomic_load_n(&t[i].count, __ATOMIC_RELAXED); /* ranks by count */
    }
    if (v) qsort(v, n, sizeof(*v), by_bytes);
    for (uint64_t i = 0; v && i < n && i < PY_TOP; i++) {
        char where[MC_PY_WHERE];
        memcpy(where, v[i].l->where, sizeof(where));
        where[sizeof(where) - 1] = 0;
        json_t *e = json_object();
        json_object_set_new(e, "line", json_string(where));
        json_object_set_new(e, "sockets", json_integer(v[i].bytes));
        json_array_append_new(a, e);
    }
    free(v);
    json_object_set_new(py, "sockets", a);
    json_t *f;
    size_t k;
    json_array_foreach (findings, k, f) {
        int kind = mc_report_finding_kind(f);
        if (json_integer_value(json_object_get(f, "pid")) != pid ||
            (kind != MC_F_FD_CREEP && kind != MC_F_SOCKET_CREEP && kind != MC_F_CLOSE_WAIT_CREEP) ||
            !json_array_size(a))
            continue;
        json_t *top = json_array();
        for (size_t j = 0; j < json_array_size(a) && j < 3; j++)
            json_array_append(top, json_array_get(a, j));
        json_object_set_new(f, "python_lines", top);
    }
}

/* The Python section of a process: types whose live objects grow (with a
 * verdict each), and cycle garbage by type; adds PYTHON OBJECTS CREEP
 * (creep) and CYCLE GARBAGE (not creep) findings. */
static void python_json(json_t *findings, json_t *o, struct mc_proc *p)
{
    const struct mc_shm_header *h = p->map.h;
    uint64_t nt;
    const struct mc_shm_pytype *ty = mc_map_pytypes(&p->map, &nt);
    if (!p->py_cap || (!nt && h->py_state == MC_PY_NONE)) return;
    /* One point per snapshot (the Python series have their own clock). */
    uint32_t n = p->py_clk.n;
    int work = n >= 2 && p->py_work[n - 1] > p->py_work[0];
    double xm[MC_SERIES_MAX], y[MC_SERIES_MAX], gsum[MC_SERIES_MAX] = {0};
    const double *xw = p->py_work;
    for (uint32_t k = 0; k < n; k++)
        xm[k] = p->py_t[k] / 60.0;
    struct py_rank *live = calloc(nt ? nt : 1, sizeof(*live));
    struct py_rank *garb = calloc(nt ? nt : 1, sizeof(*garb));
    json_t *py = json_object();
    size_t nl = 0, ng = 0;
    for (uint32_t i = 0; live && garb && i < nt && i < p->py_cap; i++) {
        const struct mc_py_series *ps = p->py[i];
        if (!ps || !n) continue;
        for (uint32_t k = 0; k < n; k++)
            y[k] = (double)ps->live[k];
        struct py_rank *r = &live[nl++];
        r->i = i;
        /* builtins, and the interpreter's C modules' types (_thread.lock) */
        r->builtin =
            ty[i].name[0] == '_' || !memchr(ty[i].name, '.', strnlen(ty[i].name, MC_PY_NAME));
        mc_judge(work ? xw : xm, y, n, PY_MIN_GROWTH, &r->tr);
        /* Too few snapshots for floors: ranked by what they grew. */
        r->key = n >= MC_MIN_POINTS ? r->tr.net : y[n - 1] - y[0];
        for (uint32_t k = 0; k < n; k++)
            gsum[k] += (double)ps->garbage[k];
        double g = (double)(ps->garbage[n - 1] - ps->garbage[0]);
        if (g > 0) {
            garb[ng].i = i;
            garb[ng++].key = g;
        }
    }
    json_object_set_new(py, "snapshots", json_integer((json_int_t)mc_map_load(&h->py_done)));
    if (n < MC_MIN_POINTS) {
        char why[200];
        mc_unknown_reason(n, n ? p->py_t[n - 1] - p->py_t[0] : 0, "snapshots",
                          "verdicts on object counts need", why, sizeof(why));
        json_object_set_new(py, "types_unknown", json_string(why));
    }
    json_object_set_new(py, "skipped", json_integer((json_int_t)mc_map_load(&h->py_skipped)));
    json_object_set_new(py, "late", json_integer((json_int_t)p->py_late));
    json_object_set_new(py, "snapshot_ms", json_real((double)h->py_snap_ns / 1e6));
    json_object_set_new(py, "finalized", json_boolean(h->py_state == MC_PY_OFF));
    qsort(live, nl, sizeof(*live), by_key);
    json_t *types = json_array(), *creep = json_array();
    for (size_t k = 0; k < nl && k < PY_TOP; k++) {
        const struct mc_py_series *ps = p->py[live[k].i];
        int64_t v[MC_SERIES_MAX];
        for (uint32_t j = 0; j < n; j++)
            y[j] = (double)(v[j] = ps->live[j]);
        json_t *e = json_object();
        json_object_set_new(
            e, "type", json_stringn(ty[live[k].i].name, strnlen(ty[live[k].i].name, MC_PY_NAME)));
        char held[MC_PY_HELD];
        memcpy(held, ty[live[k].i].held, sizeof(held));
        held[sizeof(held) - 1] = 0;
        if (held[0]) json_object_set_new(e, "held_by", json_string(held));
        json_object_set_new(e, "verdict", json_string(mc_verdict_name(live[k].tr.verdict)));
        json_object_set_new(e, "start", json_integer(v[0]));
        json_object_set_new(e, "end", json_integer(v[n - 1]));
        json_object_set_new(e, "per_min", json_real(slope_of(xm, y, n)));
        if (work) json_object_set_new(e, "per_unit", json_real(live[k].tr.slope));
        json_object_set_new(e, "p_value", json_real(live[k].tr.p));
        json_object_set_new(e, "series", iarray(v, n));
        if (live[k].tr.verdict == MC_V_CREEP) json_array_append(creep, e);
        json_array_append_new(types, e);
    }
    json_object_set_new(py, "types", types);
    qsort(garb, ng, sizeof(*garb), by_key);
    json_t *cg = json_array();
    double total = 0;
    for (size_t k = 0; k < ng; k++)
        total += garb[k].key;
    for (size_t k = 0; k < ng && k < PY_TOP; k++) {
        const struct mc_py_series *ps = p->py[garb[k].i];
        for (uint32_t j = 0; j < n; j++)
            y[j] = (double)ps->garbage[j];
        json_t *e = json_object();
        json_object_set_new(
            e, "type", json_stringn(ty[garb[k].i].name, strnlen(ty[garb[k].i].name, MC_PY_NAME)));
        json_object_set_new(e, "total", json_integer((json_int_t)garb[k].key));
        json_object_set_new(e, "per_min", json_real(slope_of(xm, y, n)));
        if (work) json_object_set_new(e, "per_unit", json_real(slope_of(xw, y, n)));
        json_array_append_new(cg, e);
    }
    json_object_set_new(py, "cycle_garbage_total", json_integer((json_int_t)total));
    json_object_set_new(py, "cycle_garbage", cg);
    json_t *lines = python_lines(py, h, &p->map);
    python_sockets(findings, py, &p->map, p->pid);
    json_object_set_new(o, "python", py);
    if (json_array_size(creep)) {
        json_t *f = mc_result_add_finding(findings, MC_F_PYTHON_OBJECTS_CREEP, p->pid);
        json_object_set(f, "types", creep);
        /* The lines that grew while traced: where the objects come from. */
        json_t *top = json_array();
        for (size_t k = 0; k < json_array_size(lines) && k < 3; k++)
            json_array_append(top, json_array_get(lines, k));
        json_object_set_new(f, "lines", top);
    }
    json_decref(creep);
    /* Garbage that comes with the work, not a few cycles left by start-up:
     * at least PY_GARBAGE_MIN objects and, with a work axis, at least
     * PY_GARBAGE_RATE per unit. The rate is the Theil-Sen slope of the
     * cumulative garbage of all types against the work, not total / work:
     * the garbage of imports done after the first snapshot comes as one
     * step, which moves only the slopes of the pairs of points around it
     * (about 2/n of them for a step at the start), whereas divided by the
     * little work of a slow run it could read as a cycle per request. */
    double rate = work ? slope_of(xw, gsum, n) : 0;
    if (work) json_object_set_new(py, "cycle_garbage_per_unit", json_real(rate));
    if (total >= PY_GARBAGE_MIN && (!work || rate >= PY_GARBAGE_RATE)) {
        json_t *f = mc_result_add_finding(findings, MC_F_CYCLE_GARBAGE, p->pid);
        json_object_set_new(f, "total", json_integer((json_int_t)total));
        json_object_set(f, "types", cg);
    }
    free(live);
    free(garb);
}

/* PYTHON CREEP: the creeping stacks of a process grouped by their Python
 * site (the program's own line, as frames_json chose it), so that what one
 * line of the program keeps is one figure however many native allocation
 * sites lie below it: the sum of their slopes (a sum of Theil-Sen slopes,
 * not the slope of the sum; close to it when the stacks grow together, as
 * those of one line do). One finding per process, its sites largest
 * first, with the type the program keeps. */
#define PY_SITES 32

/* The object the program keeps, from the process' PYTHON OBJECTS CREEP:
 * of the creeping types that are not builtins and whose holder is known,
 * the one held most directly (the shortest chain: the outermost kept
 * object, httpx.Response rather than the Headers it holds). NULL without. */
static json_t *kept_type(json_t *findings, pid_t pid)
{
    json_t *best = NULL, *f, *t;
    size_t i, k;
    json_array_foreach (findings, i, f) {
        if (mc_report_finding_kind(f) != MC_F_PYTHON_OBJECTS_CREEP ||
            json_integer_value(json_object_get(f, "pid")) != pid)
            continue;
        json_array_foreach (json_object_get(f, "types"), k, t) {
            const char *held = mc_jstr(t, "held_by");
            if (!*held || !strchr(mc_jstr(t, "type"), '.')) continue;
            if (!best || strlen(held) < strlen(mc_jstr(best, "held_by"))) best = t;
        }
    }
    return best;
}

static void python_creep(json_t *findings, json_t *stacks, pid_t pid, int work)
{
    json_t *kept = kept_type(findings, pid);
    struct {
        json_t *site, *first;
        double per_min, per_unit, obj_unit;
        json_t *ids, *in;
    } g[PY_SITES];
    int n = 0;
    size_t i;
    json_t *s;
    json_array_foreach (stacks, i, s) {
        if (strcmp(mc_jstr(s, "verdict"), "CREEP")) continue;
        json_t *fr = json_object_get(s, "frames");
        json_t *site = json_array_get(fr, (size_t)json_integer_value(json_object_get(s, "site")));
        if (!site || !json_is_true(json_object_get(site, "python"))) continue;
        int k = 0;
        while (k < n && !(!strcmp(mc_jstr(g[k].site, "file"), mc_jstr(site, "file")) &&
                          json_integer_value(json_object_get(g[k].site, "line")) ==
                              json_integer_value(json_object_get(site, "line")) &&
                          !strcmp(mc_jstr(g[k].site, "function"), mc_jstr(site, "function"))))
            k++;
        if (k == n) {
            if (n == PY_SITES) continue;
            g[n].site = site;
            g[n].first = s;
            g[n].per_min = g[n].per_unit = g[n].obj_unit = 0;
            g[n].ids = json_array();
            g[n].in = json_array();
            n++;
        }
        g[k].per_min += mc_jnum(s, "bytes_per_min");
        g[k].per_unit += mc_jnum(s, "bytes_per_unit");
        g[k].obj_unit += mc_jnum(s, "objects_per_unit");
        json_array_append(g[k].ids, json_object_get(s, "id"));
        json_t *in = json_object_get(s, "allocated_in"), *nat = json_object_get(s, "native_site");
        if (json_array_size(g[k].in) < 3) {
            json_t *e = json_object();
            if (in) json_object_set(e, "frame", json_array_get(fr, (size_t)json_integer_value(in)));
            if (nat)
                json_object_set(e, "native",
                                json_object_get(json_array_get(fr, (size_t)json_integer_value(nat)),
                                                "function"));
            json_object_set_new(e, "bytes_per_min", json_real(mc_jnum(s, "bytes_per_min")));
            if (work)
                json_object_set_new(e, "bytes_per_unit", json_real(mc_jnum(s, "bytes_per_unit")));
            json_array_append_new(g[k].in, e);
        }
    }
    if (!n) return;
    /* One finding, its sites largest first (a handful: selection sort). */
    json_t *f = mc_result_add_finding(findings, MC_F_PYTHON_CREEP, pid), *sites = json_array();
    for (int a = 0; a < n; a++) {
        int best = a;
        for (int b = a + 1; b < n; b++)
            if (g[b].per_min > g[best].per_min) best = b;
        if (best != a) {
            __typeof__(g[0]) t = g[a];
            g[a] = g[best];
            g[best] = t;
        }
        json_t *e = json_object();
        json_object_set(e, "site", g[a].site);
        json_t *fr = json_object_get(g[a].first, "frames"), *callers = json_array();
        size_t at = (size_t)json_integer_value(json_object_get(g[a].first, "site"));
        for (size_t c = at + 1; c < at + 3 && c < json_array_size(fr); c++)
            json_array_append(callers, json_array_get(fr, c));
        json_object_set_new(e, "callers", callers);
        json_object_set_new(e, "bytes_per_min", json_real(g[a].per_min));
        if (work) {
            json_object_set_new(e, "bytes_per_unit", json_real(g[a].per_unit));
            json_object_set_new(e, "objects_per_unit", json_real(g[a].obj_unit));
        }
        json_object_set_new(e, "stacks", g[a].ids);
        json_object_set_new(e, "allocated_in", g[a].in);
        json_array_append_new(sites, e);
    }
    json_object_set_new(f, "sites", sites);
    if (kept) json_object_set(f, "kept", kept);
}

static const char *verdict_max(const char *a, const char *b)
{
    return mc_verdict_parse(b) > mc_verdict_parse(a) ? b : a;
}

void mc_result_summarize(json_t *doc)
{
    json_t *sum = json_object_get(doc, "summary");
    json_t *t = json_object_get(json_object_get(json_object_get(doc, "tree"), "series"), "t");
    uint32_t n = (uint32_t)json_array_size(t);
    const char *overall = n >= MC_MIN_POINTS ? "STEADY" : "UNKNOWN";
    json_t *p, *f;
    size_t i;
    json_array_foreach (json_object_get(doc, "processes"), i, p) {
        json_t *m = json_object_get(p, "metrics");
        /* A preloaded process is judged by its stacks and its live heap;
         * one without the preload by its RSS. */
        if (json_is_true(json_object_get(p, "preloaded"))) {
            if (json_integer_value(json_object_get(p, "creeping_stacks")) > 0) overall = "CREEP";
            overall = verdict_max(overall, mc_jstr(json_object_get(m, "live_heap"), "verdict"));
        } else {
            overall = verdict_max(overall, mc_jstr(json_object_get(m, "rss"), "verdict"));
        }
    }
    /* A finding of severity creep makes the run CREEP (analysis/findings.h). */
    json_array_foreach (json_object_get(sum, "findings"), i, f)
        if (!strcmp(mc_jstr(f, "severity"), "creep")) overall = "CREEP";
    json_object_set_new(sum, "verdict", json_string(overall));
    json_object_del(sum, "reason");
    if (!strcmp(overall, "UNKNOWN")) {
        char why[200];
        double span = n ? json_number_value(json_array_get(t, n - 1)) -
                              json_number_value(json_array_get(t, 0))
                        : 0;
        mc_unknown_reason(n, span, "samples kept", "a verdict needs", why, sizeof(why));
        json_object_set_new(sum, "reason", json_string(why));
    }
}

json_t *mc_result_build(struct mc_collector *c, const struct mc_run_info *ri,
                        struct mc_symbolizer *sym)
{
    json_t *doc = json_object();
    if (!doc) return NULL;
    json_object_set_new(doc, "schema", json_string(MC_RESULT_SCHEMA));
    json_object_set_new(doc, "version", json_integer(MC_RESULT_VERSION));

    json_t *run = json_object();
    json_t *cmd = json_array();
    for (int i = 0; i < ri->argc; i++)
        json_array_append_new(cmd, json_string(ri->argv[i]));
    json_object_set_new(run, "command", cmd);
    char when[64];
    time_t st = (time_t)ri->started;
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&st));
    json_object_set_new(run, "started", json_string(when));
    double dur = c->tree.clk.n ? c->tree.t[c->tree.clk.n - 1] : 0;
    json_object_set_new(run, "duration_s", json_real(dur));
    json_object_set_new(run, "interval_s", json_real(ri->interval));
    json_object_set_new(run, "samples", json_integer((json_int_t)c->tree.clk.seen));
    json_object_set_new(run, "min_growth", json_real(ri->min_growth));
    json_object_set_new(run, "stopped_by", json_string(ri->stopped_by));
    json_object_set_new(run, "preload", json_boolean(!ri->static_target));
    json_object_set_new(run, "sample_bytes", json_integer((json_int_t)ri->sample_bytes));
    json_object_set_new(doc, "run", run);

    int creeping_total = 0;
    json_t *findings = json_array();
    json_t *procs = json_array();
    for (size_t i = 0; i < c->nprocs; i++) {
        struct mc_proc *p = c->procs[i];
        if (p->pts.clk.n == 0) continue;
        json_t *o = json_object();
        json_object_set_new(o, "pid", json_integer(p->pid));
        json_object_set_new(o, "ppid", json_integer(p->ppid));
        json_object_set_new(o, "exe", json_string(p->exe));
        json_object_set_new(o, "root", json_boolean(p->pid == c->root));
        json_object_set_new(o, "preloaded", json_boolean(p->has_map));
        if (p->has_map) json_object_set_new(o, "descriptors", descriptors_json(p->map.h));
        json_object_set_new(o, "tcp_peers", peers_json(&p->last_res));
        json_t *end = json_object();
        json_object_set_new(end, "how", json_string(end_names[p->end]));
        if (p->end == MC_END_EXITED && p->pid == c->root)
            json_object_set_new(end, "status", json_integer(p->status));
        if (p->end == MC_END_SIGNALED) json_object_set_new(end, "signal", json_integer(p->sig));
        json_object_set_new(end, "t_start", json_real(p->t_start));
        json_object_set_new(end, "t_end", json_real(p->t_end));
        json_object_set_new(o, "end", end);
        json_object_set_new(o, "series", points_json(&p->pts));
        json_t *m = mc_result_metrics(&p->pts, ri->min_growth, p->has_map);
        json_object_set_new(o, "metrics", m);
        resource_findings(findings, o, m, p, sym);
        if (p->has_map) python_json(findings, o, p);
        retention(findings, o, p, sym); /* not creep: memory kept, not leaked */
        churn(findings, o, p, sym);     /* not creep either: a cost, not a leak */
        int work = has_work(&p->pts);
        json_object_set_new(o, "per_unit", json_boolean(work));
        if (p->has_map) {
            const struct mc_shm_header *h = p->map.h;
            json_t *lost = json_object();
            json_object_set_new(lost, "stacks", json_integer((json_int_t)h->lost_stacks));
            json_object_set_new(lost, "pointers", json_integer((json_int_t)h->lost_ptrs));
            /* Samples read while thread slabs kept changing (off by at most
             * one eviction each). */
            json_object_set_new(lost, "torn_samples", json_integer((json_int_t)p->torn));
            /* Records dropped because the run directory was full. */
            json_object_set_new(lost, "no_room",
                                json_integer((json_int_t)mc_map_load(&h->room_lost)));
            /* The process cut its own mapping file short: what was past
             * the cut read as zeros. */
            if (mc_map_damaged(&p->map)) json_object_set_new(lost, "mapping_damaged", json_true());
            json_object_set_new(o, "lost", lost);
            /* memcreep's own memory in the process' RSS: the pages of its
             * mapping it committed; its Rss in /proc/PID/smaps is that or a
             * little more (the kernel's fault-around maps neighbouring
             * pages already in memory). */
            json_object_set_new(o, "memcreep_mapping_bytes",
                                json_integer((json_int_t)mc_map_load(&h->room_bytes)));
            /* Its pointer table, private memory: that much more. */
            json_object_set_new(o, "memcreep_private_bytes",
                                json_integer((json_int_t)mc_map_load(&h->own_bytes)));
            json_object_set_new(o, "work_units", json_integer((json_int_t)h->work_units));
            /* The sampling the library chose by itself: pymalloc's objects,
             * and threads in an allocation burst (their stacks carry
             * sample_bytes too). */
            json_t *smp = json_object();
            json_object_set_new(smp, "python_objects",
                                json_integer((json_int_t)mc_map_load(&h->py_sample_bytes)));
            json_object_set_new(smp, "bursts",
                                json_integer((json_int_t)mc_map_load(&h->burst_sample_bytes)));
            json_object_set_new(smp, "burst_calls",
                                json_integer((json_int_t)mc_map_load(&h->burst_calls)));
            /* The largest mean the live heap's sampled part was sampled
             * with: its noise floor (--reanalyze needs it). */
            json_object_set_new(smp, "live_heap", json_integer((json_int_t)p->pts.sample_mean));
            json_object_set_new(o, "sampling", smp);
            int creeping;
            json_t *stacks = stacks_json(p, ri, sym, work, &creeping);
            json_object_set_new(o, "stacks", stacks);
            python_creep(findings, stacks, p->pid, work);
            json_object_set_new(o, "creeping_stacks", json_integer(creeping));
            creeping_total += creeping;
        }
        json_array_append_new(procs, o);
    }
    json_object_set_new(doc, "processes", procs);
    json_object_set_new(run, "processes_dropped", json_integer((json_int_t)c->dropped));

    json_t *tree = json_object();
    json_object_set_new(tree, "series", points_json(&c->tree));
    json_object_set_new(tree, "metrics", mc_result_metrics(&c->tree, ri->min_growth, 1));
    json_object_set_new(doc, "tree", tree);

    json_t *sum = json_object();
    json_object_set_new(sum, "creeping_stacks", json_integer(creeping_total));
    json_object_set_new(sum, "findings", findings);
    json_object_set_new(doc, "summary", sum);
    mc_result_summarize(doc);
    mc_result_sanitize(doc); /* names from the program: no control characters */
    return doc;
}

int mc_result_write(json_t *doc, FILE *f)
{
    errno = 0;
    if (json_dumpf(doc, f, JSON_INDENT(1) | JSON_REAL_PRECISION(10)) != 0)
        return -(errno ? errno : EIO);
    return 0;
}
