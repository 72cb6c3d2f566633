/* result_stacks.c - the stacks of a process in the result: each judged
 * (its trend, then its allocation age), ranked, and the top ones written
 * with their frames symbolized and their site chosen; and the stacks that
 * rank highest by connections, threads or descriptors, for the findings. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analysis/age.h"
#include "analysis/findings.h"
#include "analysis/jget.h"
#include "analysis/metric_map.h"
#include "analysis/result_int.h"
#include "analysis/rules.h"
#include "analysis/verdict.h"

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
    struct mc_age age;
    enum mc_verdict by_trend; /* the verdict before the age rule */
};

/* The age of a stack's blocks from its process's census rows. */
static void stack_age(const struct mc_proc *p, const struct mc_stack_series *ss, struct mc_age *a)
{
    struct mc_age_rows rows = {p->age_rows, p->age_epoch, p->age_t, ss->age_seen, ss->age};
    mc_age_measure(&rows, a);
}

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
json_t *mc_result_frames(struct mc_proc *p, uint32_t slot, struct mc_symbolizer *sym, int *site,
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
    if (r->age.old_epochs) json_object_set_new(o, "age", mc_result_age_json(&r->age, r->by_trend));
    if (st) {
        json_object_set_new(o, "allocs", json_integer((json_int_t)st->allocs));
        json_object_set_new(o, "alloc_bytes", json_integer((json_int_t)st->alloc_bytes));
    }
    json_t *fr = r->slot == MC_STACK_OVERFLOW ? json_array()
                                              : mc_result_frames(p, r->slot, sym, &site, &py, &nat);
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
json_t *mc_build_stacks(struct mc_proc *p, const struct mc_run_info *ri, struct mc_symbolizer *sym,
                        int work, int *creeping)
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
        stack_age(p, ss, &e->age);
        e->by_trend = e->tr.verdict;
        e->tr.verdict = mc_age_verdict(e->tr.verdict, e->age.judged, e->age.survival);
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

static const char *fd_kind_names[MC_FD_KINDS] = {"tcp",  "udp",  "unix",  "socket",
                                                 "file", "pipe", "event", "other"};

/* Open descriptors by kind, as counted in an array of MC_FD_KINDS. */
json_t *mc_build_fd_kinds(const int64_t *live)
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
json_t *mc_build_top_stacks(struct mc_proc *p, struct mc_symbolizer *sym, enum top_by by)
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
    /* A stack far below the first (under 5% of it) is not what grows.
     * (Divided, not multiplied: the counts come from the target's mapping,
     * which it may have scribbled on, and best[k] * 20 could overflow.) */
    int64_t floor5 = best[0] / 20 + (best[0] % 20 != 0);
    for (int k = 0; k < 3 && best[k] > 0 && best[k] >= floor5; k++) {
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
            json_object_set_new(e, "kinds", mc_build_fd_kinds(live));
        }
        json_object_set_new(e, "frames", mc_result_frames(p, slot[k], sym, &site, &py, NULL));
        json_object_set_new(e, "site", json_integer(site));
        json_array_append_new(stacks, e);
    }
    return stacks;
}
