/* test_rules.c - the finding rules on synthetic series (analysis/rules.c),
 * the finding table (analysis/findings.c) and the reason an UNKNOWN gives
 * (analysis/verdict.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "analysis/findings.h"
#include "analysis/rules.h"
#include "analysis/verdict.h"

static void fds_stopped_by_limit(void **state)
{
    (void)state;
    double fds[40];
    /* Grows by 30 a sample until the limit of 1024 holds it. */
    for (int i = 0; i < 40; i++)
        fds[i] = 10 + 30.0 * i > 1020 ? 1020 : 10 + 30.0 * i;
    assert_true(mc_rule_fds_at_limit(fds, 40, 1024));
    /* The same, far from a larger limit: the verdict decides, not this. */
    assert_false(mc_rule_fds_at_limit(fds, 40, 65536));
    /* Unknown limit, or too few samples. */
    assert_false(mc_rule_fds_at_limit(fds, 40, 0));
    assert_false(mc_rule_fds_at_limit(fds + 36, 3, 1024));
    /* A program that opens 1020 at start and keeps them: no growth. */
    for (int i = 0; i < 40; i++)
        fds[i] = 1020;
    assert_false(mc_rule_fds_at_limit(fds, 40, 1024));
}

static void churn_per_unit(void **state)
{
    (void)state;
    struct mc_churn c = {.made = 1000, .secs = 10, .open_mean = 1, .has_unit = 1, .per_unit = 1};
    assert_true(mc_rule_churn(&c));
    assert_true(c.per_s == 100);
    assert_true(c.lifetime_s == 0.01);
    /* One connection per 10 units: a pool that reconnects now and then. */
    c.per_unit = 0.1;
    assert_false(mc_rule_churn(&c));
}

static void churn_without_units(void **state)
{
    (void)state;
    /* 600 short connections in a minute: each lives 0.05 s. */
    struct mc_churn c = {.made = 600, .secs = 60, .open_mean = 0.5};
    assert_true(mc_rule_churn(&c));
    /* A pool: 8 connections open the whole run, made once. */
    struct mc_churn pool = {.made = 8, .secs = 60, .open_mean = 8};
    assert_false(mc_rule_churn(&pool));
    /* Many connections, but each lives a third of the run (Little: 40
     * open / 0.5 a second = 80 s): long-lived, not churn. */
    struct mc_churn longlived = {.made = 30, .secs = 60, .open_mean = 40};
    assert_false(mc_rule_churn(&longlived));
    /* Nothing made, or no time: never divides by zero. */
    struct mc_churn none = {0};
    assert_false(mc_rule_churn(&none));
    assert_true(none.per_s == 0 && none.lifetime_s == 0);
}

static void retention_needs_more_free_than_live(void **state)
{
    (void)state;
    double mib = 1024.0 * 1024;
    assert_true(mc_rule_retention(50 * mib, 2 * mib));
    assert_false(mc_rule_retention(3 * mib, 0));         /* below 4 MiB */
    assert_false(mc_rule_retention(50 * mib, 80 * mib)); /* a big live heap */
}

static void table_codes_are_unique_and_parse(void **state)
{
    (void)state;
    for (int i = 0; i < MC_F_COUNT; i++) {
        assert_non_null(mc_findings[i].code);
        assert_int_equal(mc_finding_parse(mc_findings[i].code), i);
        /* Titles are what version 1 documents carry. */
        assert_int_equal(mc_finding_parse(mc_findings[i].title), i);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(mc_findings[i].code, mc_findings[j].code);
        /* Codes are identifiers: lower case, digits and '_'. */
        for (const char *c = mc_findings[i].code; *c; c++)
            assert_true((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_');
    }
    assert_int_equal(mc_finding_parse("no such finding"), -1);
    assert_int_equal(mc_finding_parse(NULL), -1);
    assert_string_equal(mc_severity_name(mc_findings[MC_F_FD_CREEP].severity), "creep");
    assert_string_equal(mc_severity_name(mc_findings[MC_F_CONNECTION_CHURN].severity), "cost");
}

static void unknown_says_why(void **state)
{
    (void)state;
    char buf[200];
    /* 8 samples over 1.75 s: one per 0.25 s, 12 need 2.75 s. */
    mc_unknown_reason(8, 1.75, "samples", "a verdict needs", buf, sizeof(buf));
    assert_non_null(strstr(buf, "8 samples in 1.8 s"));
    assert_non_null(strstr(buf, "needs 12"));
    assert_non_null(strstr(buf, "at least 2.8 s"));
    mc_unknown_reason(1, 0, "snapshots", "verdicts need", buf, sizeof(buf));
    assert_non_null(strstr(buf, "1 snapshots; verdicts need 12: run longer"));
    mc_unknown_reason(12, 3, "samples", "a verdict needs", buf, sizeof(buf));
    assert_string_equal(buf, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fds_stopped_by_limit),
        cmocka_unit_test(churn_per_unit),
        cmocka_unit_test(churn_without_units),
        cmocka_unit_test(retention_needs_more_free_than_live),
        cmocka_unit_test(table_codes_are_unique_and_parse),
        cmocka_unit_test(unknown_says_why),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
