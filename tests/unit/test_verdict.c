/* test_verdict.c - the classifier on synthetic series: creep, creep under
 * churn, plateau, sawtooth, noise, small growth, too few points. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "analysis/verdict.h"

#define N 60

static double x[N], y[N];
static const struct mc_trend_opts opts = {16384, 0.01};

static enum mc_verdict classify(size_t n, struct mc_trend *t)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (double)i * 10; /* e.g. requests */
    mc_trend_classify(x, y, n, &opts, t);
    return t->verdict;
}

static void linear_is_creep(void **state)
{
    (void)state;
    struct mc_trend t;
    for (int i = 0; i < N; i++)
        y[i] = 256.0 * i * 10;
    assert_int_equal(classify(N, &t), MC_V_CREEP);
    assert_true(fabs(t.slope - 256) < 1e-9);
    assert_true(t.p < 1e-6 && t.late_share > 0.4);
}

static void creep_under_churn(void **state)
{
    (void)state;
    struct mc_trend t;
    /* Keeps 100 B per request but churns up to 40 KiB on top. */
    for (int i = 0; i < N; i++)
        y[i] = 100.0 * i * 10 + (i % 6) * 8000;
    assert_int_equal(classify(N, &t), MC_V_CREEP);
    assert_true(fabs(t.slope - 100) < 30);
}

static void late_start_is_creep(void **state)
{
    (void)state;
    struct mc_trend t;
    for (int i = 0; i < N; i++)
        y[i] = i < 30 ? 5000 : 5000 + 400.0 * (i - 30) * 10;
    assert_int_equal(classify(N, &t), MC_V_CREEP);
}

static void filling_cache_is_plateau(void **state)
{
    (void)state;
    struct mc_trend t;
    for (int i = 0; i < N; i++)
        y[i] = (i < 15 ? i : 15) * 20000.0;
    assert_int_equal(classify(N, &t), MC_V_PLATEAU);
}

static void single_step_is_not_creep(void **state)
{
    (void)state;
    struct mc_trend t;
    /* Allocated once, late in the run: not growth per request. */
    for (int i = 0; i < N; i++)
        y[i] = i < 40 ? 1000 : 200000;
    assert_int_not_equal(classify(N, &t), MC_V_CREEP);
}

static void sawtooth_is_steady(void **state)
{
    (void)state;
    struct mc_trend t;
    for (int i = 0; i < N; i++)
        y[i] = (i % 8) * 30000.0;
    assert_int_equal(classify(N, &t), MC_V_STEADY);
}

static void noise_is_steady(void **state)
{
    (void)state;
    struct mc_trend t;
    srand(7);
    for (int i = 0; i < N; i++)
        y[i] = 1e6 + (rand() % 200000);
    assert_int_equal(classify(N, &t), MC_V_STEADY);
}

static void small_growth_is_steady(void **state)
{
    (void)state;
    struct mc_trend t;
    for (int i = 0; i < N; i++)
        y[i] = 100.0 * i; /* 6 KB in all < 16 KiB */
    assert_int_equal(classify(N, &t), MC_V_STEADY);
    assert_true(t.net > 0);
}

static void shrinking_is_steady(void **state)
{
    (void)state;
    struct mc_trend t;
    for (int i = 0; i < N; i++)
        y[i] = 1e7 - 1000.0 * i;
    assert_int_equal(classify(N, &t), MC_V_STEADY);
}

static void too_few_points(void **state)
{
    (void)state;
    struct mc_trend t;
    for (int i = 0; i < N; i++)
        y[i] = 1e5 * i;
    assert_int_equal(classify(MC_MIN_POINTS - 1, &t), MC_V_UNKNOWN);
    assert_int_equal(classify(MC_MIN_POINTS, &t), MC_V_CREEP);
}

static void names_round_trip(void **state)
{
    (void)state;
    for (int v = MC_V_UNKNOWN; v <= MC_V_CREEP; v++)
        assert_int_equal(mc_verdict_parse(mc_verdict_name((enum mc_verdict)v)), v);
    assert_int_equal(mc_verdict_parse("creep"), -1);
    assert_int_equal(mc_verdict_parse(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(linear_is_creep),          cmocka_unit_test(creep_under_churn),
        cmocka_unit_test(late_start_is_creep),      cmocka_unit_test(filling_cache_is_plateau),
        cmocka_unit_test(sawtooth_is_steady),       cmocka_unit_test(noise_is_steady),
        cmocka_unit_test(single_step_is_not_creep), cmocka_unit_test(small_growth_is_steady),
        cmocka_unit_test(shrinking_is_steady),      cmocka_unit_test(too_few_points),
        cmocka_unit_test(names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
