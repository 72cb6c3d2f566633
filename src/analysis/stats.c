/* stats.c - robust trend statistics, written here rather than taken from a
 * library because what is needed is three short, well-known formulas on at
 * most a few hundred points, and they must match scipy exactly.
 *
 * Theil-Sen (Theil 1950, Sen 1968): slope = median over pairs i<j with
 * x_i != x_j of (y_j - y_i) / (x_j - x_i); intercept = median(y) -
 * slope * median(x) (scipy.stats.theilslopes, method "separate"). Robust to
 * up to 29% outliers: a GC pause or one burst does not move it.
 *
 * Mann-Kendall (Mann 1945, Kendall 1975): S = sum over i<j of
 * sgn(x_j - x_i) * sgn(y_j - y_i). Under "no trend" S is close to normal
 * with mean 0 and, with tie groups of sizes t in x and u in y, n' = n(n-1):
 *   var = (n'(2n+5) - sum t(t-1)(2t+5) - sum u(u-1)(2u+5)) / 18
 *       + 2 * [sum t(t-1)/2] * [sum u(u-1)/2] / n'
 *       + [sum t(t-1)(t-2)] * [sum u(u-1)(u-2)] / (9 n' (n-2))
 * z = S / sqrt(var) and the one-sided p = 1 - Phi(z) = erfc(z / sqrt 2) / 2,
 * without continuity correction: scipy.stats.kendalltau(x, y,
 * method="asymptotic", alternative="greater") computes the same. The test
 * needs no assumption on the noise distribution, only on independence. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

static void swap(double *a, double *b)
{
    double t = *a;
    *a = *b;
    *b = t;
}

/* Wirth's selection (Algorithms + Data Structures = Programs, 1976): the
 * k-th smallest of v[0..n) in expected O(n); afterwards v[0..k) <= v[k]. */
static double select_kth(double *v, size_t n, size_t k)
{
    long l = 0, m = (long)n - 1, kk = (long)k;
    while (l < m) {
        double x = v[kk];
        long i = l, j = m;
        do {
            while (v[i] < x)
                i++;
            while (x < v[j])
                j--;
            if (i <= j) {
                swap(&v[i], &v[j]);
                i++;
                j--;
            }
        } while (i <= j);
        if (j < kk) l = i;
        if (kk < i) m = j;
    }
    return v[kk];
}

double mc_median(double *v, size_t n)
{
    double a = select_kth(v, n, n / 2);
    if (n % 2) return a;
    /* The lower middle is the largest of the lower half after selection. */
    double b = v[0];
    for (size_t i = 1; i < n / 2; i++)
        if (v[i] > b) b = v[i];
    return (a + b) / 2;
}

int mc_theil_sen(const double *x, const double *y, size_t n, double *slope, double *intercept)
{
    if (n < 2) return -1;
    size_t m = 0;
    double *s = malloc(n * (n - 1) / 2 * sizeof(double));
    if (!s) return -1;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double dx = x[j] - x[i];
            if (dx > 0) s[m++] = (y[j] - y[i]) / dx;
        }
    if (m == 0) {
        free(s);
        return -1;
    }
    *slope = mc_median(s, m);
    if (intercept) {
        double *t = realloc(s, 2 * n * sizeof(double));
        if (!t) {
            free(s);
            return -1;
        }
        memcpy(t, y, n * sizeof(double));
        memcpy(t + n, x, n * sizeof(double));
        *intercept = mc_median(t, n) - *slope * mc_median(t + n, n);
        s = t;
    }
    free(s);
    return 0;
}

/* Sums over the tie groups of a sorted copy of v: t(t-1)/2, t(t-1)(t-2),
 * t(t-1)(2t+5). */
static void tie_sums(const double *v, size_t n, double *pairs, double *c0, double *c1)
{
    double *s = malloc(n * sizeof(double));
    *pairs = *c0 = *c1 = 0;
    if (!s) return;
    memcpy(s, v, n * sizeof(double));
    for (size_t i = 1; i < n; i++) { /* insertion sort: n is small */
        double k = s[i];
        size_t j = i;
        while (j > 0 && s[j - 1] > k) {
            s[j] = s[j - 1];
            j--;
        }
        s[j] = k;
    }
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s[j] == s[i])
            j++;
        double t = (double)(j - i);
        if (t > 1) {
            *pairs += t * (t - 1) / 2;
            *c0 += t * (t - 1) * (t - 2);
            *c1 += t * (t - 1) * (2 * t + 5);
        }
        i = j;
    }
    free(s);
}

static int sgn(double d)
{
    return (d > 0) - (d < 0);
}

int mc_mann_kendall(const double *x, const double *y, size_t n, struct mc_mk *out)
{
    memset(out, 0, sizeof(*out));
    out->p_inc = 0.5;
    if (n < 3) return -1;
    double s = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            s += sgn(x[j] - x[i]) * sgn(y[j] - y[i]);
    double xt, x0, x1, yt, y0, y1;
    tie_sums(x, n, &xt, &x0, &x1);
    tie_sums(y, n, &yt, &y0, &y1);
    double nn = (double)n, m = nn * (nn - 1);
    double var =
        (m * (2 * nn + 5) - x1 - y1) / 18 + (2 * xt * yt) / m + x0 * y0 / (9 * m * (nn - 2));
    double tot = m / 2;
    out->s = s;
    out->var = var;
    if (tot - xt > 0 && tot - yt > 0) out->tau = s / sqrt(tot - xt) / sqrt(tot - yt);
    if (var > 0) {
        out->z = s / sqrt(var);
        out->p_inc = 0.5 * erfc(out->z / M_SQRT2);
    }
    return 0;
}

int mc_ols(const double *x, const double *y, size_t n, double *slope, double *intercept, double *r2)
{
    if (n < 2) return -1;
    double mx = 0, my = 0;
    for (size_t i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= (double)n;
    my /= (double)n;
    double sxx = 0, sxy = 0, syy = 0;
    for (size_t i = 0; i < n; i++) {
        sxx += (x[i] - mx) * (x[i] - mx);
        sxy += (x[i] - mx) * (y[i] - my);
        syy += (y[i] - my) * (y[i] - my);
    }
    if (sxx == 0) return -1;
    *slope = sxy / sxx;
    if (intercept) *intercept = my - *slope * mx;
    if (r2) *r2 = syy > 0 ? (sxy * sxy) / (sxx * syy) : 1;
    return 0;
}
