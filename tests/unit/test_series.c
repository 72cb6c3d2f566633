/* test_series.c - bounded series stay bounded and evenly spaced however
 * long the run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "analysis/series.h"

static void long_run_stays_bounded(void **state)
{
    (void)state;
    struct mc_clock c = {0};
    static double t[MC_SERIES_MAX];
    for (long k = 0; k < 1000000; k++) {
        int halved;
        int i = mc_clock_next(&c, 0, &halved);
        if (halved) mc_series_halve_f64(t, MC_SERIES_MAX);
        if (i < 0) continue;
        assert_true(i < MC_SERIES_MAX);
        t[i] = (double)k;
    }
    assert_true(c.n <= MC_SERIES_MAX && c.n > MC_SERIES_MAX / 2);
    assert_true((c.stride & (c.stride - 1)) == 0);
    for (uint32_t i = 1; i < c.n; i++)
        assert_true(t[i] - t[i - 1] == c.stride);
    assert_true(t[0] == 0);
}

static void final_sample_is_kept(void **state)
{
    (void)state;
    struct mc_clock c = {0};
    double t[MC_SERIES_MAX];
    int halved, i = -1;
    for (long k = 0; k < 1000; k++) {
        int j = mc_clock_next(&c, k == 999, &halved);
        if (halved) mc_series_halve_f64(t, MC_SERIES_MAX);
        if (j >= 0) t[i = j] = (double)k;
    }
    assert_true(t[i] == 999 && (uint32_t)i == c.n - 1);
}

/* mc_clock_would_keep says beforehand what mc_clock_next then does, so a
 * sample it rules out need not be read. */
static void would_keep_predicts_next(void **state)
{
    (void)state;
    struct mc_clock c = {0};
    long kept = 0;
    for (long k = 0; k < 100000; k++) {
        int halved, keep = mc_clock_would_keep(&c);
        int i = mc_clock_next(&c, 0, &halved);
        assert_int_equal(keep, i >= 0);
        kept += keep;
    }
    /* Reads fall with the length of the run: 256 + 128 per doubling. */
    assert_true(kept < 256 + 128 * 10);
}

static void halve_i64(void **state)
{
    (void)state;
    int64_t a[6] = {0, 1, 2, 3, 4, 5};
    mc_series_halve_i64(a, 6);
    assert_true(a[0] == 0 && a[1] == 2 && a[2] == 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(long_run_stays_bounded),
        cmocka_unit_test(final_sample_is_kept),
        cmocka_unit_test(would_keep_predicts_next),
        cmocka_unit_test(halve_i64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
