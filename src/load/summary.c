/* summary.c - the load driver's summary (see summary.h). */
#include <stdio.h>

#include "common/util.h"
#include "load/summary.h"

static const double quantiles[] = {0.5, 0.75, 0.9, 0.99, 0.999};
static const char *qnames[] = {"p50", "p75", "p90", "p99", "p99.9"};
#define NQ 5

/* A server that serves one connection at a time (a blocking loop over
 * accept) answers one slot; the others wait unseen until they time out.
 * When the one it serves times out in turn it moves to the next, so the
 * sign is a slot with most of the answers (80%) and half of the slots or
 * more with none, not exactly one answered slot. */
int mc_load_warning(const struct mc_load_stats *st, char *buf, size_t len)
{
    uint32_t used = st->conns_answered + st->conns_unanswered;
    if (used < 2 || st->ok < 10 || 2 * st->conns_unanswered < used ||
        (double)st->top_answered < 0.8 * (double)st->ok)
        return 0;
    snprintf(buf, len,
             "%u of %u connections got no answer and one got %.0f%% of them: the server seems to "
             "serve one connection at a time; try -c 1",
             st->conns_unanswered, used, 100.0 * (double)st->top_answered / (double)st->ok);
    return 1;
}

/* {"1xx": n, ..., "5xx": n} from counts by first digit (status[1..5]); a
 * new object. */
static json_t *status_json(const uint64_t status[6])
{
    json_t *o = json_object();
    for (int i = 1; i < 6; i++) {
        char k[8];
        snprintf(k, sizeof(k), "%dxx", i);
        json_object_set_new(o, k, json_integer((json_int_t)status[i]));
    }
    return o;
}

json_t *mc_load_summary_json(const struct mc_load_stats *st)
{
    json_t *o = json_object();
    double el = st->elapsed > 0 ? st->elapsed : 1e-9;
    json_object_set_new(o, "requests", json_integer((json_int_t)st->done));
    json_object_set_new(o, "ok", json_integer((json_int_t)st->ok));
    json_object_set_new(o, "seconds", json_real(st->elapsed));
    json_object_set_new(o, "requests_per_s", json_real((double)st->done / el));
    json_object_set_new(o, "bytes", json_integer((json_int_t)st->bytes));
    json_object_set_new(o, "body_bytes", json_integer((json_int_t)st->body_bytes));
    json_object_set_new(o, "connections", json_integer((json_int_t)st->connections));
    json_object_set_new(o, "connections_answered", json_integer(st->conns_answered));
    char w[256];
    if (mc_load_warning(st, w, sizeof(w))) json_object_set_new(o, "warning", json_string(w));
    json_object_set_new(o, "status", status_json(st->status));
    json_t *errs = json_object();
    for (int i = 0; i < MC_ERR_KINDS; i++)
        json_object_set_new(errs, mc_load_err_name((enum mc_load_err)i),
                            json_integer((json_int_t)st->errors[i]));
    json_object_set_new(o, "errors", errs);
    json_t *lat = json_object();
    const struct mc_hist *h = &st->hist;
    json_object_set_new(lat, "min", json_integer(h->count ? (json_int_t)h->min_us : 0));
    json_object_set_new(lat, "mean", json_real(h->count ? h->sum_us / (double)h->count : 0));
    json_object_set_new(lat, "max", json_integer((json_int_t)h->max_us));
    for (int i = 0; i < NQ; i++)
        json_object_set_new(lat, qnames[i],
                            json_integer((json_int_t)mc_hist_quantile(h, quantiles[i])));
    json_object_set_new(o, "latency_us", lat);
    if (st->nkinds) {
        json_t *mix = json_array();
        for (size_t i = 0; i < st->nkinds; i++) {
            const struct mc_load_kind_stats *k = &st->kinds[i];
            json_t *m = json_object();
            json_object_set_new(m, "name", json_string(k->name));
            json_object_set_new(m, "weight", json_integer(k->weight));
            json_object_set_new(m, "requests", json_integer((json_int_t)k->done));
            json_object_set_new(m, "ok", json_integer((json_int_t)k->ok));
            json_object_set_new(m, "errors", json_integer((json_int_t)k->errors));
            json_object_set_new(m, "requests_per_s", json_real((double)k->done / el));
            json_object_set_new(m, "share",
                                json_real(st->done ? (double)k->done / (double)st->done : 0));
            json_object_set_new(m, "status", status_json(k->status));
            json_object_set_new(m, "latency_mean_us",
                                json_real(k->ok ? k->sum_us / (double)k->ok : 0));
            json_object_set_new(m, "latency_max_us", json_integer((json_int_t)k->max_us));
            json_array_append_new(mix, m);
        }
        json_object_set_new(o, "mix", mix);
    }
    return o;
}

static void fmt_us(char *buf, size_t len, double us)
{
    if (us < 1000)
        snprintf(buf, len, "%.0f us", us);
    else if (us < 1e6)
        snprintf(buf, len, "%.2f ms", us / 1000);
    else
        snprintf(buf, len, "%.2f s", us / 1e6);
}

void mc_load_summary_text(const struct mc_load_stats *st, const char *what, FILE *out)
{
    double el = st->elapsed > 0 ? st->elapsed : 1e-9;
    char b[32];
    mc_fmt_bytes(b, sizeof(b), (double)st->bytes / el, 0);
    fprintf(out, "memcreep load %s\n", what);
    fprintf(out, "  requests     %llu in %.2f s: %.0f req/s, %s/s\n", (unsigned long long)st->done,
            st->elapsed, (double)st->done / el, b);
    fprintf(out, "  status      ");
    for (int i = 1; i < 6; i++)
        if (st->status[i]) fprintf(out, " %dxx %llu", i, (unsigned long long)st->status[i]);
    fprintf(out, "%s\n", st->ok ? "" : " none");
    fprintf(out, "  errors      ");
    for (int i = 0; i < MC_ERR_KINDS; i++)
        fprintf(out, " %s %llu%s", mc_load_err_name((enum mc_load_err)i),
                (unsigned long long)st->errors[i], i + 1 < MC_ERR_KINDS ? "," : "\n");
    const struct mc_hist *h = &st->hist;
    fprintf(out, "  latency     ");
    for (int i = 0; i < NQ; i++) {
        fmt_us(b, sizeof(b), (double)mc_hist_quantile(h, quantiles[i]));
        fprintf(out, " %s %s", qnames[i], b);
    }
    fmt_us(b, sizeof(b), (double)h->max_us);
    fprintf(out, "  max %s", b);
    fmt_us(b, sizeof(b), h->count ? h->sum_us / (double)h->count : 0);
    fprintf(out, "  mean %s\n", b);
    fprintf(out, "  connections  %llu opened\n", (unsigned long long)st->connections);
    /* One row per kind of a mix: its share of the requests is the one to
     * set beside a finding's bytes per request. */
    if (st->nkinds)
        fprintf(out, "  mix          %-28s %9s %8s %7s %7s %7s  %s\n", "request", "requests",
                "req/s", "share", "errors", "non-2xx", "mean latency");
    for (size_t i = 0; i < st->nkinds; i++) {
        const struct mc_load_kind_stats *k = &st->kinds[i];
        fmt_us(b, sizeof(b), k->ok ? k->sum_us / (double)k->ok : 0);
        fprintf(out, "               %-28s %9llu %8.0f %6.1f%% %7llu %7llu  %s\n", k->name,
                (unsigned long long)k->done, (double)k->done / el,
                st->done ? 100.0 * (double)k->done / (double)st->done : 0,
                (unsigned long long)k->errors, (unsigned long long)(k->ok - k->status[2]), b);
    }
    char w[256];
    if (mc_load_warning(st, w, sizeof(w))) fprintf(out, "  warning      %s\n", w);
}
