/* verdict.c - classification of one series.
 *
 * The series is cut into K equal segments (K = min(12, n/3)) and each
 * segment's minimum taken: the floor. Memory that is freed periodically (a
 * sawtooth, a GC) comes back to the floor each period, so the floor rises
 * only when something is kept: looking at floors is what separates creep
 * from churn. Then:
 *
 *   net        = floor[K-1] - floor[0]
 *   late_share = (floor[K-1] - floor[K/2]) / net
 *   CREEP    if net >= min_growth, Mann-Kendall on all points has
 *            p < alpha, Mann-Kendall on the floors has p < 0.05, and
 *            late_share >= 0.15 (growth goes on in the second half)
 *   PLATEAU  if the same holds but late_share < 0.15 (grew, then stopped),
 *            or the Theil-Sen line accounts for less than a quarter of net
 *            (a single step: something allocated once, not again and again)
 *   STEADY   otherwise
 *
 * For an exactly linear series late_share is about 0.5; a cache that fills
 * in the first third and then evicts has late_share near 0. The slope is
 * Theil-Sen over all points, robust to single spikes. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "stats.h"
#include "verdict.h"

#define LATE_SHARE_MIN 0.15
#define STEP_SHARE     0.25
#define FLOOR_ALPHA    0.05
#define MAX_SEGMENTS   12

static size_t segments(size_t n)
{
    size_t k = n / 3;
    return k > MAX_SEGMENTS ? MAX_SEGMENTS : k;
}

/* Fills floors fy (and their positions fx when x is given); returns K. */
static size_t floors(const double *x, const double *y, size_t n, double *fx, double *fy)
{
    size_t k = segments(n);
    for (size_t s = 0; s < k; s++) {
        size_t a = s * n / k, b = (s + 1) * n / k;
        size_t at = a;
        for (size_t i = a + 1; i < b; i++)
            if (y[i] < y[at]) at = i;
        fy[s] = y[at];
        if (fx) fx[s] = x[at];
    }
    return k;
}

/* A block of n bytes sampled with mean R is seen with probability
 * p = 1 - exp(-n/R) and counted as n/p, so an estimate of L live bytes
 * has variance sum n_i^2 (1 - p_i) / p_i, about R * L when the blocks are
 * much smaller than R (Poisson thinning; jemalloc's prof docs). The net
 * growth is the difference of two such estimates, of at most the peak
 * each: its sampling sd is at most sqrt(2 R peak). Growth is told from
 * noise when it is 3 such sd, and made of at least 10 samples (10 R: a
 * few survivors of a churning population are not a trend). */
#define SAMPLED_SD    3.0
#define SAMPLED_MIN_K 10.0

double mc_sampled_min_growth(double min, double mean, const double *y, size_t n)
{
    if (mean <= 0) return min;
    double peak = 0;
    for (size_t i = 0; i < n; i++)
        if (y[i] > peak) peak = y[i];
    double floor = SAMPLED_SD * sqrt(2 * mean * peak);
    if (floor < SAMPLED_MIN_K * mean) floor = SAMPLED_MIN_K * mean;
    return floor > min ? floor : min;
}

double mc_trend_net(const double *y, size_t n)
{
    double fy[MAX_SEGMENTS];
    if (n < MC_MIN_POINTS) return 0;
    size_t k = floors(NULL, y, n, NULL, fy);
    return fy[k - 1] - fy[0];
}

void mc_judge(const double *x, const double *y, size_t n, double min_growth, struct mc_trend *t)
{
    struct mc_trend_opts o = {min_growth, 0.01};
    double net = mc_trend_net(y, n);
    if (net >= min_growth) {
        mc_trend_classify(x, y, n, &o, t);
        return;
    }
    memset(t, 0, sizeof(*t));
    t->verdict = n >= MC_MIN_POINTS ? MC_V_STEADY : MC_V_UNKNOWN;
    t->net = net;
    t->p = t->p_floor = 1;
    t->n = n;
}

void mc_trend_classify(const double *x, const double *y, size_t n, const struct mc_trend_opts *o,
                       struct mc_trend *t)
{
    double fx[MAX_SEGMENTS], fy[MAX_SEGMENTS];
    struct mc_mk mk;
    memset(t, 0, sizeof(*t));
    t->n = n;
    t->p = t->p_floor = 1;
    if (n < MC_MIN_POINTS) {
        t->verdict = MC_V_UNKNOWN;
        if (n >= 2) mc_theil_sen(x, y, n, &t->slope, NULL);
        return;
    }
    size_t k = floors(x, y, n, fx, fy);
    t->net = fy[k - 1] - fy[0];
    t->late_share = t->net > 0 ? (fy[k - 1] - fy[k / 2]) / t->net : 0;
    if (mc_theil_sen(x, y, n, &t->slope, NULL) != 0) t->slope = 0;
    t->verdict = MC_V_STEADY;
    if (t->net < o->min_growth || t->net <= 0) return;
    if (mc_mann_kendall(x, y, n, &mk) == 0) t->p = mk.p_inc;
    if (mc_mann_kendall(fx, fy, k, &mk) == 0) t->p_floor = mk.p_inc;
    if (t->p >= o->alpha || t->p_floor >= FLOOR_ALPHA) return;
    double along = t->slope * (x[n - 1] - x[0]);
    t->verdict =
        t->late_share >= LATE_SHARE_MIN && along >= STEP_SHARE * t->net ? MC_V_CREEP : MC_V_PLATEAU;
}

void mc_unknown_reason(uint32_t n, double span, const char *what, const char *needs, char *buf,
                       size_t len)
{
    if (n >= MC_MIN_POINTS) {
        if (len) buf[0] = 0;
        return;
    }
    /* The pace seen so far: n points over span seconds. */
    double pace = n >= 2 && span > 0 ? span / (double)(n - 1) : 0;
    if (pace > 0)
        snprintf(buf, len, "%u %s in %.1f s; %s %d: run for at least %.1f s at this pace", n, what,
                 span, needs, MC_MIN_POINTS, pace * (MC_MIN_POINTS - 1));
    else
        snprintf(buf, len, "%u %s; %s %d: run longer", n, what, needs, MC_MIN_POINTS);
}

static const char *names[] = {"UNKNOWN", "STEADY", "PLATEAU", "CREEP"};

const char *mc_verdict_name(enum mc_verdict v)
{
    return (unsigned)v < 4 ? names[v] : "UNKNOWN";
}

int mc_verdict_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s && !strcmp(s, names[i])) return i;
    return -1;
}
