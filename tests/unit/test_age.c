/* test_age.c - allocation age on synthetic census rows (analysis/age.c):
 * a leak's epochs all survive, a cache's and a window's die, transients in
 * flight at an epoch's close do not count, too little is not judged, and
 * the rule turns a CREEP whose old epochs died into PLATEAU only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "analysis/age.h"

#define ROWS 9

/* Rows taken as epochs 1..8 start, then a last one in epoch 8: the shape a
 * run of 8 rounds gives (epoch 0 before the first row). */
static uint32_t epoch[ROWS] = {1, 2, 3, 4, 5, 6, 7, 8, 8};
static double t[ROWS] = {1, 2, 3, 4, 5, 6, 7, 8, 8.5};
static int64_t bytes[ROWS][MC_AGE_EPOCHS];

static struct mc_age_rows rows(void)
{
    return (struct mc_age_rows){ROWS, epoch, t, (1u << ROWS) - 1,
                                (const int64_t(*)[MC_AGE_EPOCHS])bytes};
}

/* Each epoch e < row's epoch made `made` bytes; at row k, an epoch closed
 * `age` rows ago keeps keep(age) of them. */
static void fill(int64_t made, double (*keep)(int age), int64_t in_flight)
{
    memset(bytes, 0, sizeof(bytes));
    for (int k = 0; k < ROWS; k++)
        for (uint32_t e = 0; e < epoch[k]; e++) {
            int age = (int)epoch[k] - 1 - (int)e; /* 0: closed at this row */
            bytes[k][e] = (int64_t)((double)made * keep(age)) + (age == 0 ? in_flight : 0);
        }
}

static double all(int age)
{
    (void)age;
    return 1;
}

static double one_epoch(int age)
{
    return age <= 1 ? 1 : 0; /* freed two epochs after it was made */
}

static double half_life(int age)
{
    double k = 1;
    for (int i = 0; i < age; i++)
        k /= 2;
    return k;
}

static void leak_survives(void **state)
{
    (void)state;
    struct mc_age a;
    fill(100000, all, 0);
    struct mc_age_rows r = rows();
    assert_int_equal(mc_age_measure(&r, &a), 1);
    assert_true(a.survival > 0.999 && a.survival < 1.001);
    /* Epochs 0..5 are old (settled by row 6 at the latest, two before the last). */
    assert_int_equal(a.old_epochs, 6);
    assert_true(a.old_share > 0.7 && a.old_share < 0.8); /* 6 of 8 epochs */
    /* The youngest old epoch (5) ended as epoch 6 began: 2 epochs and a
     * half (2.5 s) before the last row. */
    assert_int_equal(a.older_epochs, 2);
    assert_true(a.older_s > 2.49 && a.older_s < 2.51);
    assert_int_equal(mc_age_verdict(MC_V_CREEP, a.judged, a.survival), MC_V_CREEP);
}

static void turnover_dies(void **state)
{
    (void)state;
    struct mc_age a;
    struct mc_age_rows r = rows();
    fill(100000, one_epoch, 0);
    assert_int_equal(mc_age_measure(&r, &a), 1);
    assert_true(a.survival < 0.001);
    assert_int_equal(mc_age_verdict(MC_V_CREEP, a.judged, a.survival), MC_V_PLATEAU);
    /* Halving each epoch: a quarter left at least two epochs on. */
    fill(100000, half_life, 0);
    assert_int_equal(mc_age_measure(&r, &a), 1);
    assert_true(a.survival < MC_AGE_MIN_SURVIVAL);
    /* Never makes anything else PLATEAU, nor anything CREEP. */
    assert_int_equal(mc_age_verdict(MC_V_STEADY, a.judged, a.survival), MC_V_STEADY);
    assert_int_equal(mc_age_verdict(MC_V_UNKNOWN, a.judged, a.survival), MC_V_UNKNOWN);
}

static void in_flight_is_not_kept(void **state)
{
    (void)state;
    struct mc_age a;
    struct mc_age_rows r = rows();
    /* A leak of 20 kB an epoch behind 1 MB of buffers in flight as each
     * epoch closes: measured from the settled row, still a leak. */
    fill(20000, all, 1000000);
    assert_int_equal(mc_age_measure(&r, &a), 1);
    assert_true(a.survival > 0.999);
    assert_int_equal(mc_age_verdict(MC_V_CREEP, a.judged, a.survival), MC_V_CREEP);
}

static void too_little_is_not_judged(void **state)
{
    (void)state;
    struct mc_age a;
    struct mc_age_rows r = rows();
    fill(1000, one_epoch, 0); /* 6 kB in old epochs: under MC_AGE_MIN_BYTES */
    assert_int_equal(mc_age_measure(&r, &a), 0);
    assert_int_equal(mc_age_verdict(MC_V_CREEP, a.judged, a.survival), MC_V_CREEP);
    /* Too few rows. */
    fill(100000, one_epoch, 0);
    r.n = 3;
    assert_int_equal(mc_age_measure(&r, &a), 0);
    /* The last row unknown (the stack had no series then). */
    r = rows();
    r.seen &= ~(1u << (ROWS - 1));
    assert_int_equal(mc_age_measure(&r, &a), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(leak_survives),
        cmocka_unit_test(turnover_dies),
        cmocka_unit_test(in_flight_is_not_kept),
        cmocka_unit_test(too_little_is_not_judged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
