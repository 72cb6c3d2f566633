/* stats_cli.c - reads "x y" lines on stdin and prints the statistics of
 * analysis/stats.c as JSON, for test_stats_scipy.py to compare with scipy. */
#include <stdio.h>

#include "analysis/stats.h"

int main(void)
{
    static double x[4096], y[4096];
    size_t n = 0;
    while (n < 4096 && scanf("%lf %lf", &x[n], &y[n]) == 2)
        n++;
    double ts = 0, ti = 0, os = 0, oi = 0, r2 = 0;
    struct mc_mk mk;
    mc_theil_sen(x, y, n, &ts, &ti);
    mc_mann_kendall(x, y, n, &mk);
    mc_ols(x, y, n, &os, &oi, &r2);
    printf("{\"theil_slope\": %.17g, \"theil_intercept\": %.17g, \"mk_s\": %.17g, "
           "\"mk_z\": %.17g, \"mk_p\": %.17g, \"tau\": %.17g, \"ols_slope\": %.17g, "
           "\"ols_intercept\": %.17g, \"r2\": %.17g}\n",
           ts, ti, mk.s, mk.z, mk.p_inc, mk.tau, os, oi, r2);
    return 0;
}
