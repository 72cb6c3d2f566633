/* result_python.c - the Python section of a process in the result: types
 * whose live objects grow (with what holds them), cycle garbage, growth by
 * Python line, open sockets by line, and PYTHON CREEP from the stacks. */
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
    struct mc_age age;
    enum mc_verdict by_trend; /* the verdict before the age rule */
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
        int kind = mc_result_finding_kind(f);
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
void mc_build_python(json_t *findings, json_t *o, struct mc_proc *p)
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
        /* builtins, and the interpreter's C modules' types (_thread.lock);
         * the program's own (__main__.Record) are not */
        int plain = !memchr(ty[i].name, '.', strnlen(ty[i].name, MC_PY_NAME));
        r->builtin = plain || (ty[i].name[0] == '_' && strncmp(ty[i].name, "__main__.", 9) != 0);
        mc_judge(work ? xw : xm, y, n, PY_MIN_GROWTH, &r->tr);
        /* The age of its objects (analysis/age.c): a type whose old objects
         * die is turnover, not creep. Not for builtins: CPython keeps freed
         * lists, dicts, tuples, floats... on free lists and hands them out
         * again without an allocation, so such a block's epoch is the first
         * object's it held, not this one's. */
        struct mc_age_rows rows = {p->py_age_rows, p->py_age_epoch, p->py_age_t, ps->age_seen,
                                   (const int64_t(*)[MC_AGE_EPOCHS])ps->age};
        memset(&r->age, 0, sizeof(r->age));
        if (!plain) mc_age_measure(&rows, &r->age);
        r->by_trend = r->tr.verdict;
        r->tr.verdict = mc_age_verdict(r->tr.verdict, r->age.judged, r->age.survival);
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
    /* The snapshots' own clock, for --reanalyze (reanalyze.c). */
    json_t *clk = json_object();
    json_object_set_new(clk, "t", farray(p->py_t, n));
    json_object_set_new(clk, "work", farray(p->py_work, n));
    json_object_set_new(py, "series", clk);
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
        if (live[k].age.old_epochs)
            json_object_set_new(e, "age", mc_result_age_json(&live[k].age, live[k].by_trend));
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

/* Reads a saved array of numbers into v (at most MC_SERIES_MAX); returns
 * how many, -1 when it is not one. */
static int saved_numbers(json_t *a, double *v)
{
    if (!json_is_array(a) || json_array_size(a) > MC_SERIES_MAX) return -1;
    size_t i;
    json_t *x;
    json_array_foreach (a, i, x) {
        if (!json_is_number(x)) return -1;
        v[i] = json_number_value(x);
    }
    return (int)json_array_size(a);
}

void mc_build_python_reanalyze(json_t *findings, json_t *proc)
{
    json_t *py = json_object_get(proc, "python");
    json_t *clk = json_object_get(py, "series");
    double t[MC_SERIES_MAX], xw[MC_SERIES_MAX], xm[MC_SERIES_MAX], y[MC_SERIES_MAX];
    int n = saved_numbers(json_object_get(clk, "t"), t);
    if (n < 0 || saved_numbers(json_object_get(clk, "work"), xw) != n) return; /* older run */
    int work = n >= 2 && xw[n - 1] > xw[0];
    for (int k = 0; k < n; k++)
        xm[k] = t[k] / 60.0;
    json_t *creep = json_array(), *e;
    size_t i;
    json_array_foreach (json_object_get(py, "types"), i, e) {
        if (saved_numbers(json_object_get(e, "series"), y) != n) continue;
        struct mc_trend tr;
        mc_judge(work ? xw : xm, y, (size_t)n, PY_MIN_GROWTH, &tr);
        json_t *age = json_object_get(e, "age");
        if (age) {
            json_object_set_new(age, "trend_verdict", json_string(mc_verdict_name(tr.verdict)));
            tr.verdict = mc_age_verdict(tr.verdict, json_is_true(json_object_get(age, "judged")),
                                        mc_jnum(age, "survival"));
        }
        json_object_set_new(e, "verdict", json_string(mc_verdict_name(tr.verdict)));
        json_object_set_new(e, "p_value", json_real(tr.p));
        if (work) json_object_set_new(e, "per_unit", json_real(tr.slope));
        if (tr.verdict == MC_V_CREEP) json_array_append(creep, e);
    }
    /* PYTHON OBJECTS CREEP follows the types: kept (its lines with it),
     * dropped, or added. */
    json_int_t pid = json_integer_value(json_object_get(proc, "pid"));
    json_t *f = NULL;
    size_t at = 0;
    json_array_foreach (findings, i, e)
        if (mc_result_finding_kind(e) == MC_F_PYTHON_OBJECTS_CREEP &&
            json_integer_value(json_object_get(e, "pid")) == pid) {
            f = e;
            at = i;
            break;
        }
    if (!json_array_size(creep)) {
        if (f) json_array_remove(findings, at);
    } else {
        if (!f) f = mc_result_add_finding(findings, MC_F_PYTHON_OBJECTS_CREEP, (pid_t)pid);
        json_object_set(f, "types", creep);
    }
    json_decref(creep);
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
        if (mc_result_finding_kind(f) != MC_F_PYTHON_OBJECTS_CREEP ||
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

void mc_build_python_creep(json_t *findings, json_t *stacks, pid_t pid, int work)
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
