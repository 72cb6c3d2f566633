/* test_util.c - parsing of durations, sizes and numbers; formatting. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "common/util.h"

static void durations(void **state)
{
    (void)state;
    double d;
    assert_int_equal(mc_parse_duration("2.5", &d), 0);
    assert_true(d == 2.5);
    assert_int_equal(mc_parse_duration("500ms", &d), 0);
    assert_true(d == 0.5);
    assert_int_equal(mc_parse_duration("5m", &d), 0);
    assert_true(d == 300);
    assert_int_equal(mc_parse_duration("1h", &d), 0);
    assert_true(d == 3600);
    const char *bad[] = {"", "abc", "-1", "5x", "1e999", "nan", "10 s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(mc_parse_duration(bad[i], &d), -EINVAL);
}

static void sizes(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(mc_parse_size("4096", &v), 0);
    assert_true(v == 4096);
    assert_int_equal(mc_parse_size("16k", &v), 0);
    assert_true(v == 16384);
    assert_int_equal(mc_parse_size("2MiB", &v), 0);
    assert_true(v == 2u << 20);
    assert_int_equal(mc_parse_size("-1", &v), -EINVAL);
    assert_int_equal(mc_parse_size("3q", &v), -EINVAL);
    assert_int_equal(mc_parse_size("99999999999G", &v), -EINVAL);
}

static void numbers(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(mc_parse_u64("64", 1, 256, &v), 0);
    assert_true(v == 64);
    assert_int_equal(mc_parse_u64("0", 1, 256, &v), -ERANGE);
    assert_int_equal(mc_parse_u64("-3", 1, 256, &v), -EINVAL);
    assert_int_equal(mc_parse_u64("12a", 1, 256, &v), -EINVAL);
    assert_int_equal(mc_parse_u64("", 1, 256, &v), -EINVAL);
}

static void formatting(void **state)
{
    (void)state;
    char b[32];
    mc_fmt_bytes(b, sizeof(b), 512, 1);
    assert_string_equal(b, "+512 B");
    mc_fmt_bytes(b, sizeof(b), 1536, 0);
    assert_string_equal(b, "1.50 KiB");
    mc_fmt_bytes(b, sizeof(b), -3.0 * 1024 * 1024, 1);
    assert_string_equal(b, "-3.00 MiB");
    mc_fmt_count(b, sizeof(b), 55900, 1);
    assert_string_equal(b, "+55.9k");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(durations),
        cmocka_unit_test(sizes),
        cmocka_unit_test(numbers),
        cmocka_unit_test(formatting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
