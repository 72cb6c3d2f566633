/* test_load_parts.c - the load driver's parts that need no network: the
 * HTTP/1.1 response parser (fed whole and byte by byte), URL parsing and
 * placeholders, and the latency histogram's percentiles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "load/h1_parser.h"
#include "load/hist.h"
#include "load/url.h"

static struct mc_h1 p;

/* Feeds s in pieces of `step` bytes; returns bytes consumed in all. */
static size_t feed(const char *s, size_t step, int head)
{
    size_t len = strlen(s), off = 0;
    mc_h1_begin(&p, head);
    while (off < len && p.state != MC_H1_DONE && p.state != MC_H1_ERROR) {
        size_t n = len - off < step ? len - off : step;
        off += mc_h1_feed(&p, s + off, n);
    }
    return off;
}

static void content_length_any_split(void **state)
{
    (void)state;
    const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhelloHTTP/1.1";
    for (size_t step = 1; step < 70; step++) {
        size_t used = feed(r, step, 0);
        assert_int_equal(p.state, MC_H1_DONE);
        assert_int_equal(p.status, 200);
        assert_int_equal(p.body_bytes, 5);
        assert_int_equal(used, strlen(r) - strlen("HTTP/1.1"));
        assert_false(p.close);
    }
}

static void chunked_and_trailers(void **state)
{
    (void)state;
    const char *r = "HTTP/1.1 201 Created\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                    "5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\n";
    for (size_t step = 1; step < 9; step++) {
        feed(r, step, 0);
        assert_int_equal(p.state, MC_H1_DONE);
        assert_int_equal(p.status, 201);
        assert_int_equal(p.body_bytes, 31);
    }
}

static void body_until_close_and_no_body_cases(void **state)
{
    (void)state;
    feed("HTTP/1.0 200 OK\r\n\r\nabc", 4, 0);
    assert_int_equal(p.state, MC_H1_BODY_EOF);
    mc_h1_eof(&p);
    assert_int_equal(p.state, MC_H1_DONE);
    assert_int_equal(p.body_bytes, 3);
    assert_true(p.close);
    feed("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", 100, 0);
    assert_int_equal(p.state, MC_H1_DONE);
    feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 100, 1); /* HEAD */
    assert_int_equal(p.state, MC_H1_DONE);
    feed("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
         "Connection: close\r\n\r\nok",
         3, 0);
    assert_int_equal(p.state, MC_H1_DONE);
    assert_int_equal(p.status, 200);
    assert_true(p.close);
}

static void malformed_is_error(void **state)
{
    (void)state;
    const char *bad[] = {
        "HELLO THERE\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        feed(bad[i], 7, 0);
        assert_int_equal(p.state, MC_H1_ERROR);
        assert_non_null(p.error);
    }
    char *huge = malloc(MC_H1_LINE_MAX + 64);
    strcpy(huge, "HTTP/1.1 200 OK\r\nX: ");
    memset(huge + strlen(huge), 'a', MC_H1_LINE_MAX);
    huge[MC_H1_LINE_MAX + 20] = 0;
    feed(huge, 1000, 0);
    assert_int_equal(p.state, MC_H1_ERROR);
    free(huge);
    feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 100, 0);
    mc_h1_eof(&p);
    assert_int_equal(p.state, MC_H1_ERROR);
}

static void urls(void **state)
{
    (void)state;
    struct mc_url u;
    char err[256];
    assert_int_equal(mc_url_parse("http://127.0.0.1:8080/api?x=1", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_string_equal(u.port, "8080");
    assert_string_equal(u.path, "/api?x=1");
    assert_string_equal(u.authority, "127.0.0.1:8080");
    assert_int_equal(mc_url_parse("https://localhost", &u, err, sizeof(err)), 0);
    assert_true(u.tls && !strcmp(u.port, "443") && !strcmp(u.path, "/") &&
                !strcmp(u.authority, "localhost"));
    assert_int_equal(mc_url_parse("http://[::1]:9000/x", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.authority, "[::1]:9000");
    const char *bad[] = {"ftp://x/",     "127.0.0.1:80/",   "http://",
                         "http://:80/",  "http://h:0/",     "http://h:99999/",
                         "http://h/a b", "http://h/{nope}", "http://h:8x/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(mc_url_parse(bad[i], &u, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "8x"));
    char out[64];
    uint64_t rng = 42;
    assert_true(mc_url_expand("/u/{seq}/r{rand:10}", 17, &rng, out, sizeof(out)) > 0);
    assert_int_equal(strncmp(out, "/u/17/r", 7), 0);
    assert_true(out[7] >= '0' && out[7] <= '9' && out[8] == 0);
    assert_int_equal(mc_url_expand("/{seq}", 123456, &rng, out, 4), -1);
}

static void histogram_percentiles(void **state)
{
    (void)state;
    static struct mc_hist h;
    mc_hist_reset(&h);
    for (uint64_t v = 1; v <= 100000; v++)
        mc_hist_record(&h, v);
    assert_int_equal(h.count, 100000);
    const double qs[] = {0.5, 0.9, 0.99, 0.999};
    for (size_t i = 0; i < 4; i++) {
        double want = qs[i] * 100000, got = (double)mc_hist_quantile(&h, qs[i]);
        assert_true(got >= want && got <= want * 1.002 + 1);
    }
    assert_int_equal(mc_hist_quantile(&h, 1.0), 100000);
    assert_int_equal(mc_hist_quantile(&h, 0), 1);
    static struct mc_hist h2;
    mc_hist_reset(&h2);
    mc_hist_record(&h2, (uint64_t)1 << 50); /* beyond the range: clamped, kept */
    mc_hist_merge(&h, &h2);
    assert_int_equal(h.count, 100001);
    assert_true(mc_hist_quantile(&h, 1.0) == (uint64_t)1 << 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(content_length_any_split),
        cmocka_unit_test(chunked_and_trailers),
        cmocka_unit_test(body_until_close_and_no_body_cases),
        cmocka_unit_test(malformed_is_error),
        cmocka_unit_test(urls),
        cmocka_unit_test(histogram_percentiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
