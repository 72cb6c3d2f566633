/* test_stats.c - Theil-Sen, Mann-Kendall and least squares on series whose
 * answers are known in closed form. (test_stats_scipy.py checks random
 * series against scipy.) */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "analysis/stats.h"

static void theil_sen_exact_line(void **state)
{
    (void)state;
    double x[20], y[20], m, b;
    for (int i = 0; i < 20; i++) {
        x[i] = i;
        y[i] = 2.5 * i + 7;
    }
    assert_int_equal(mc_theil_sen(x, y, 20, &m, &b), 0);
    assert_true(fabs(m - 2.5) < 1e-12);
    assert_true(fabs(b - 7) < 1e-12);
}

static void theil_sen_ignores_outliers(void **state)
{
    (void)state;
    double x[11], y[11], m;
    for (int i = 0; i < 11; i++) {
        x[i] = i;
        y[i] = i;
    }
    y[5] = 1000; /* one GC pause, one burst */
    y[8] = -500;
    assert_int_equal(mc_theil_sen(x, y, 11, &m, NULL), 0);
    assert_true(fabs(m - 1) < 1e-12);
    double ols;
    assert_int_equal(mc_ols(x, y, 11, &ols, NULL, NULL), 0);
    assert_true(fabs(ols - 1) > 1); /* least squares is pulled away */
}

static void theil_sen_needs_two_distinct_x(void **state)
{
    (void)state;
    double x[3] = {1, 1, 1}, y[3] = {1, 2, 3}, m;
    assert_int_equal(mc_theil_sen(x, y, 3, &m, NULL), -1);
    assert_int_equal(mc_theil_sen(x, y, 1, &m, NULL), -1);
}

static void mann_kendall_increasing(void **state)
{
    (void)state;
    double x[10], y[10];
    struct mc_mk mk;
    for (int i = 0; i < 10; i++)
        x[i] = y[i] = i;
    assert_int_equal(mc_mann_kendall(x, y, 10, &mk), 0);
    /* S = n(n-1)/2 = 45, var = n(n-1)(2n+5)/18 = 125. */
    assert_true(mk.s == 45);
    assert_true(fabs(mk.var - 125) < 1e-9);
    assert_true(fabs(mk.z - 45 / sqrt(125)) < 1e-12);
    assert_true(fabs(mk.p_inc - 0.5 * erfc(45 / sqrt(125) / M_SQRT2)) < 1e-15);
    assert_true(fabs(mk.tau - 1) < 1e-12);
}

static void mann_kendall_flat_and_decreasing(void **state)
{
    (void)state;
    double x[8], y[8];
    struct mc_mk mk;
    for (int i = 0; i < 8; i++) {
        x[i] = i;
        y[i] = 42;
    }
    assert_int_equal(mc_mann_kendall(x, y, 8, &mk), 0);
    assert_true(mk.s == 0 && mk.p_inc == 0.5);
    for (int i = 0; i < 8; i++)
        y[i] = -i;
    assert_int_equal(mc_mann_kendall(x, y, 8, &mk), 0);
    assert_true(mk.s == -28 && mk.p_inc > 0.99);
    assert_int_equal(mc_mann_kendall(x, y, 2, &mk), -1);
}

static void median_odd_even(void **state)
{
    (void)state;
    double a[] = {5, 1, 4, 2, 3};
    double b[] = {8, 1, 7, 2, 6, 3};
    assert_true(mc_median(a, 5) == 3);
    assert_true(mc_median(b, 6) == 4.5);
    double c[] = {2, 2, 2, 2};
    assert_true(mc_median(c, 4) == 2);
}

static void ols_fit(void **state)
{
    (void)state;
    double x[] = {0, 1, 2, 3}, y[] = {1, 3, 5, 7}, m, b, r2;
    assert_int_equal(mc_ols(x, y, 4, &m, &b, &r2), 0);
    assert_true(fabs(m - 2) < 1e-12 && fabs(b - 1) < 1e-12 && fabs(r2 - 1) < 1e-12);
    double z[] = {3, 3, 3, 3};
    assert_int_equal(mc_ols(z, y, 4, &m, &b, &r2), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(theil_sen_exact_line),
        cmocka_unit_test(theil_sen_ignores_outliers),
        cmocka_unit_test(theil_sen_needs_two_distinct_x),
        cmocka_unit_test(mann_kendall_increasing),
        cmocka_unit_test(mann_kendall_flat_and_decreasing),
        cmocka_unit_test(median_odd_even),
        cmocka_unit_test(ols_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
