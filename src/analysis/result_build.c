/* result_build.c - builds the result document (result.h) from what the
 * collector gathered: each series gets its verdict and slopes as it is
 * written out, so the document carries the evidence (series, slope,
 * p-values, allocation age) next to each verdict; then the findings and
 * the summary. The renderers (src/report) only read the document. */
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

static const char *end_names[] = {"running", "exited", "signaled", "exec", "vanished", "stopped"};

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

void mc_result_age_metric(json_t *metric, json_t *age)
{
    if (!metric || !age) return;
    int v = mc_verdict_parse(mc_jstr(metric, "verdict"));
    json_object_set_new(age, "trend_verdict", json_string(mc_jstr(metric, "verdict")));
    if (v >= 0) {
        enum mc_verdict w =
            mc_age_verdict((enum mc_verdict)v, json_is_true(json_object_get(age, "judged")),
                           mc_jnum(age, "survival"));
        json_object_set_new(metric, "verdict", json_string(mc_verdict_name(w)));
    }
    json_object_set(metric, "age", age);
}

/* The age of a process's whole heap: every stack's rows added up. */
json_t *mc_build_proc_age(const struct mc_proc *p)
{
    static int64_t sum[MC_AGE_ROWS][MC_AGE_EPOCHS];
    memset(sum, 0, sizeof(sum));
    uint32_t seen = 0;
    for (uint32_t slot = 0; slot < p->stk_cap; slot++) {
        const struct mc_stack_series *ss = p->stk[slot];
        if (!ss) continue;
        seen |= ss->age_seen;
        for (int k = 0; k < p->age_rows; k++)
            for (int e = 0; e < MC_AGE_EPOCHS; e++)
                sum[k][e] += ss->age[k][e];
    }
    struct mc_age_rows rows = {p->age_rows, p->age_epoch, p->age_t, seen,
                               (const int64_t(*)[MC_AGE_EPOCHS])sum};
    struct mc_age a;
    mc_age_measure(&rows, &a);
    return a.old_epochs ? mc_result_age_json(&a, MC_V_UNKNOWN) : NULL;
}

json_t *mc_result_age_json(const struct mc_age *a, enum mc_verdict by_trend)
{
    json_t *o = json_object();
    json_object_set_new(o, "judged", json_boolean(a->judged));
    json_object_set_new(o, "survival", json_real(a->survival));
    json_object_set_new(o, "old_share", json_real(a->old_share));
    json_object_set_new(o, "older_s", json_real(a->older_s));
    json_object_set_new(o, "older_epochs", json_integer(a->older_epochs));
    json_object_set_new(o, "old_epochs", json_integer(a->old_epochs));
    json_object_set_new(o, "settled_bytes", json_real(a->settled));
    json_object_set_new(o, "old_bytes", json_real(a->now));
    json_object_set_new(o, "trend_verdict", json_string(mc_verdict_name(by_trend)));
    return o;
}

void mc_result_set_trend(json_t *o, const struct mc_trend *tr)
{
    json_object_set_new(o, "verdict", json_string(mc_verdict_name(tr->verdict)));
    json_object_set_new(o, "net_growth", json_real(tr->net));
    json_object_set_new(o, "p_value", json_real(tr->p));
    json_object_set_new(o, "p_floor", json_real(tr->p_floor));
    json_object_set_new(o, "confidence", json_real(1 - tr->p));
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
        if (p->has_map) json_object_set_new(o, "descriptors", mc_build_descriptors(p->map.h));
        json_object_set_new(o, "tcp_peers", mc_build_peers(&p->last_res));
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
        if (p->has_map) {
            json_t *age = mc_build_proc_age(p);
            mc_result_age_metric(json_object_get(m, "live_heap"), age);
            json_decref(age);
        }
        mc_build_resource_findings(findings, o, m, p, sym);
        if (p->has_map) mc_build_python(findings, o, p);
        mc_build_retention(findings, o, p, sym); /* not creep: memory kept, not leaked */
        mc_build_churn(findings, o, p, sym);     /* not creep either: a cost, not a leak */
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
            /* The censuses of allocation age (age_census.c): how many rows,
             * and what the last one walked and took. */
            json_t *cen = json_object();
            json_object_set_new(cen, "rows", json_integer(p->age_rows));
            json_object_set_new(cen, "last_blocks",
                                json_integer((json_int_t)mc_map_load(&h->age_census_blocks)));
            json_object_set_new(cen, "last_s",
                                json_real((double)mc_map_load(&h->age_census_ns) / 1e9));
            json_object_set_new(o, "age_censuses", cen);
            int creeping;
            json_t *stacks = mc_build_stacks(p, ri, sym, work, &creeping);
            json_object_set_new(o, "stacks", stacks);
            mc_build_python_creep(findings, stacks, p->pid, work);
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
