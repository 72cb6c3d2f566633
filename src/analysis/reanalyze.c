/* reanalyze.c - `memcreep report RUN --reanalyze`: a saved run judged again.
 *
 * A result document keeps every series its verdicts were drawn from, so
 * the verdicts can be drawn again with this memcreep's rules: to check a
 * change of rule on old runs, or to read an old run as memcreep reads runs
 * now. The series are read back into the structures the run itself filled
 * (analysis/metric_map.h says which key is which field), and judged by the
 * same functions (mc_result_metrics, mc_judge, mc_result_summarize). What
 * the series cannot give back stays as saved: the stacks' frames and the
 * findings' stacks (from the target's mappings), the allocation age's
 * census rows (their measure is saved and the age rule applied to it
 * again), and the Python types of runs saved before their snapshots' clock
 * was. */
#include <stdio.h>
#include <string.h>

#include "analysis/findings.h"
#include "analysis/metric_map.h"
#include "analysis/rules.h"
#include "analysis/stats.h"
#include "analysis/verdict.h"
#include "analysis/jget.h"
#include "analysis/result.h"
#include "analysis/result_int.h"

/* Copies a JSON array of numbers into v (at most MC_SERIES_MAX); returns
 * how many, or -1 when it is not an array of numbers. */
static int numbers(json_t *a, double *v)
{
    if (!json_is_array(a)) return -1;
    size_t n = json_array_size(a) < MC_SERIES_MAX ? json_array_size(a) : MC_SERIES_MAX;
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(a, i);
        if (!json_is_number(x)) return -1;
        v[i] = json_number_value(x);
    }
    return (int)n;
}

/* Reads a "series" object back into pts; a series missing from an older
 * document reads as zeros. Returns the points, or -1 without a time axis. */
static int points_from(json_t *series, struct mc_points *pts)
{
    memset(pts, 0, sizeof(*pts));
    int n = numbers(json_object_get(series, "t"), pts->t);
    if (n < 0) return -1;
    double tmp[MC_SERIES_MAX];
    if (numbers(json_object_get(series, "work"), tmp) == n) memcpy(pts->work, tmp, sizeof(tmp));
#define MC_SERIES_READ(key, field, label, judged, preload, row)                                    \
    if (numbers(json_object_get(series, #key), tmp) == n) memcpy(pts->field, tmp, sizeof(tmp));
    MC_METRIC_MAP(MC_SERIES_READ)
#undef MC_SERIES_READ
    pts->clk.n = (uint32_t)n;
    return n;
}

/* The verdict fields of one stack, judged again from its bytes. */
static void restack(json_t *st, const struct mc_points *pts, double min_growth, int work)
{
    double y[MC_SERIES_MAX], xm[MC_SERIES_MAX];
    uint32_t n = pts->clk.n;
    if (numbers(json_object_get(json_object_get(st, "series"), "bytes"), y) != (int)n) return;
    for (uint32_t i = 0; i < n; i++)
        xm[i] = pts->t[i] / 60.0;
    struct mc_trend tr;
    double mean = mc_jnum(st, "sample_bytes");
    mc_judge(work ? pts->work : xm, y, n, mc_sampled_min_growth(min_growth, mean, y, n), &tr);
    json_t *age = json_object_get(st, "age");
    if (age) {
        json_object_set_new(age, "trend_verdict", json_string(mc_verdict_name(tr.verdict)));
        tr.verdict = mc_age_verdict(tr.verdict, json_is_true(json_object_get(age, "judged")),
                                    mc_jnum(age, "survival"));
    }
    mc_result_set_trend(st, &tr);
}

/* The findings that follow from one metric's verdict (FD, SOCKET, THREAD
 * CREEP): kept while their metric still creeps (or the descriptor limit
 * stopped it), dropped when it no longer does, added (without the stacks,
 * which only the target's mapping had) when it newly does. */
static void refind(json_t *findings, json_t *proc, const struct mc_points *pts)
{
    const enum mc_finding_kind *kinds = mc_metric_findings;
    json_int_t pid = json_integer_value(json_object_get(proc, "pid"));
    json_t *m = json_object_get(proc, "metrics");
    for (size_t k = 0; k < MC_METRIC_FINDINGS; k++) {
        json_t *x = json_object_get(m, mc_findings[kinds[k]].metric);
        json_t *f = NULL;
        size_t i, at = 0;
        json_array_foreach (findings, i, f) {
            if (mc_result_finding_kind(f) == (int)kinds[k] &&
                json_integer_value(json_object_get(f, "pid")) == pid) {
                at = i;
                break;
            }
        }
        if (i == json_array_size(findings)) f = NULL;
        double limit = f ? mc_jnum(f, "limit") : 0;
        int creeps = !strcmp(mc_jstr(x, "verdict"), "CREEP") ||
                     (kinds[k] == MC_F_FD_CREEP && limit > 0 &&
                      mc_rule_fds_at_limit(pts->fds, pts->clk.n, limit));
        if (f && !creeps) {
            json_array_remove(findings, at);
        } else if (f) {
            json_object_set(f, "evidence", x);
        } else if (creeps) {
            json_object_set(mc_result_add_finding(findings, kinds[k], (pid_t)pid), "evidence", x);
        }
    }
}

int mc_result_reanalyze(json_t *doc, char *err, size_t errlen)
{
    static struct mc_points pts; /* 30 KiB: not on the stack */
    json_t *run = json_object_get(doc, "run");
    double min_growth = mc_jnum(run, "min_growth");
    json_t *findings = json_object_get(json_object_get(doc, "summary"), "findings");
    json_t *p;
    size_t i, judged = 0, creeping_total = 0;
    double heap_mean = 0;
    json_array_foreach (json_object_get(doc, "processes"), i, p) {
        if (points_from(json_object_get(p, "series"), &pts) < 0) continue;
        judged++;
        int mapped = json_is_true(json_object_get(p, "preloaded"));
        pts.sample_mean = mc_jnum(json_object_get(p, "sampling"), "live_heap");
        if (pts.sample_mean > heap_mean) heap_mean = pts.sample_mean;
        json_t *old_age = json_incref(
            json_object_get(json_object_get(json_object_get(p, "metrics"), "live_heap"), "age"));
        json_object_set_new(p, "metrics", mc_result_metrics(&pts, min_growth, mapped));
        /* The census rows are not saved, their measure is: the rule is
         * applied again to it. */
        mc_result_age_metric(json_object_get(json_object_get(p, "metrics"), "live_heap"), old_age);
        json_decref(old_age);
        if (findings) refind(findings, p, &pts);
        if (!mapped) continue;
        if (findings && json_object_get(p, "python")) mc_build_python_reanalyze(findings, p);
        int work = json_is_true(json_object_get(p, "per_unit"));
        json_t *st;
        size_t k, creeping = 0;
        json_array_foreach (json_object_get(p, "stacks"), k, st) {
            restack(st, &pts, min_growth, work);
            creeping += !strcmp(mc_jstr(st, "verdict"), "CREEP");
        }
        json_object_set_new(p, "creeping_stacks", json_integer((json_int_t)creeping));
        creeping_total += creeping;
    }
    if (!judged) {
        snprintf(err, errlen, "no process of this run has series to judge");
        return -1;
    }
    json_t *tree = json_object_get(doc, "tree");
    if (points_from(json_object_get(tree, "series"), &pts) >= 0) {
        pts.sample_mean = heap_mean;
        json_object_set_new(tree, "metrics", mc_result_metrics(&pts, min_growth, 1));
    }
    json_t *sum = json_object_get(doc, "summary");
    json_object_set_new(sum, "creeping_stacks", json_integer((json_int_t)creeping_total));
    mc_result_summarize(doc);
    return 0;
}
