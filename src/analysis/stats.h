/* stats.h - the statistics behind the verdicts: Theil-Sen slopes, the
 * Mann-Kendall trend test, least squares. docs/statistics.md explains how
 * they are used; tests/unit/test_stats_scipy.py checks them against scipy. */
#ifndef MC_STATS_H
#define MC_STATS_H

#include <stddef.h>

struct mc_mk {
    double s;     /* concordant - discordant pairs */
    double var;   /* variance of s under no trend, with tie corrections */
    double z;     /* s / sqrt(var); 0 when var is 0 */
    double p_inc; /* one-sided p-value of "no trend" against "increasing" */
    double tau;   /* Kendall's tau-b */
};

/* Theil-Sen estimator. Returns 0, or -1 when fewer than two distinct x. */
int mc_theil_sen(const double *x, const double *y, size_t n, double *slope, double *intercept);
/* Mann-Kendall test of y against x. Returns 0, or -1 when n < 3. */
int mc_mann_kendall(const double *x, const double *y, size_t n, struct mc_mk *out);
/* Ordinary least squares. Returns 0, or -1 when x has no spread. */
int mc_ols(const double *x, const double *y, size_t n, double *slope, double *intercept,
           double *r2);
/* Median of v (reorders v). n must be > 0. */
double mc_median(double *v, size_t n);

#endif
