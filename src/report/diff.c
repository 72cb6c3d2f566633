/* diff.c - two runs side by side (memcreep diff A B): before and after a
 * fix, h1 against h2, yesterday against today. The verdicts, the target's
 * main rates, each process matched by its program, and every stack that
 * grew in either run, matched by where it allocates (the site's function,
 * file and line, and two callers): addresses differ between runs, places
 * in the code do not. Rendered from the two result documents only. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "report/diff.h"
#include "analysis/jget.h"
#include "report/result.h"

#define DIFF_STACKS 20

json_t *mc_diff_root(json_t *doc)
{
    json_t *p, *best = NULL;
    size_t i;
    json_array_foreach (json_object_get(doc, "processes"), i, p) {
        if (!json_is_true(json_object_get(p, "root"))) continue;
        if (!best || (json_is_true(json_object_get(p, "preloaded")) &&
                      strcmp(mc_jstr(json_object_get(p, "end"), "how"), "exec")))
            best = p;
    }
    return best;
}

static const char *base_name(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

/* A stack's place in the code: site function file:line <- two callers. */
static void stack_key(json_t *s, char *buf, size_t len)
{
    json_t *frames = json_object_get(s, "frames");
    size_t site = (size_t)json_integer_value(json_object_get(s, "site"));
    size_t n = json_array_size(frames), at = 0;
    buf[0] = 0;
    for (size_t k = site; k < n && k < site + 3 && at < len; k++) {
        json_t *f = json_array_get(frames, k);
        const char *file = base_name(mc_jstr(f, "file"));
        if (k == site)
            at += (size_t)snprintf(buf + at, len - at, "%s  %s:%lld", mc_jstr(f, "function"), file,
                                   (long long)json_integer_value(json_object_get(f, "line")));
        else
            at += (size_t)snprintf(buf + at, len - at, " <- %s", mc_jstr(f, "function"));
    }
}

/* Adds every stack of a run to rows (by key), with its growth per unit
 * when per_unit, else per minute. */
static size_t collect(json_t *doc, int side, int per_unit, struct mc_diff_row *rows, size_t n,
                      size_t cap)
{
    json_t *p, *s;
    size_t i, k;
    json_array_foreach (json_object_get(doc, "processes"), i, p) {
        json_array_foreach (json_object_get(p, "stacks"), k, s) {
            char key[256];
            stack_key(s, key, sizeof(key));
            double v = mc_jnum(s, per_unit ? "bytes_per_unit" : "bytes_per_min");
            size_t r = 0;
            while (r < n && strcmp(rows[r].key, key))
                r++;
            if (r == n) {
                if (n == cap) continue;
                memset(&rows[n], 0, sizeof(rows[n]));
                snprintf(rows[n].key, sizeof(rows[n].key), "%s", key);
                n++;
            }
            rows[r].v[side] += v;
            rows[r].in[side] = 1;
        }
    }
    return n;
}

static int by_change(const void *a, const void *b)
{
    const struct mc_diff_row *x = a, *y = b;
    double dx = fabs(x->v[1] - x->v[0]), dy = fabs(y->v[1] - y->v[0]);
    return (dx < dy) - (dx > dy);
}

size_t mc_diff_stacks(json_t *a, json_t *b, int per_unit, struct mc_diff_row **out)
{
    size_t cap = 2 * 200, n = 0;
    struct mc_diff_row *rows = calloc(cap, sizeof(*rows));
    *out = rows;
    if (!rows) return 0;
    n = collect(a, 0, per_unit, rows, n, cap);
    n = collect(b, 1, per_unit, rows, n, cap);
    qsort(rows, n, sizeof(*rows), by_change);
    return n;
}

json_t *mc_diff_match(json_t *db, json_t *p, char *used, size_t cap)
{
    const char *exe = base_name(mc_jstr(p, "exe"));
    json_t *x;
    size_t k;
    json_array_foreach (json_object_get(db, "processes"), k, x) {
        if (k < cap && !used[k] && !strcmp(base_name(mc_jstr(x, "exe")), exe)) {
            used[k] = 1;
            return x;
        }
    }
    return NULL;
}

int mc_diff_per_unit(json_t *a, json_t *b)
{
    json_t *ra = mc_diff_root(a), *rb = mc_diff_root(b);
    return ra && rb && json_is_true(json_object_get(ra, "per_unit")) &&
           json_is_true(json_object_get(rb, "per_unit"));
}

static void cell_bytes(char *buf, size_t len, int present, double v)
{
    if (!present)
        snprintf(buf, len, "-");
    else
        mc_fmt_bytes(buf, len, v, 1);
}

enum cell { C_COUNT, C_RATE, C_BYTES, C_PERCENT };

/* One metric of both runs and the change: counts as counts, rates as
 * signed bytes, sizes as bytes, throughput with the change in percent. */
static void metric_line(FILE *out, const char *label, json_t *ma, json_t *mb, const char *k,
                        enum cell how)
{
    if (!ma && !mb) return;
    char a[32] = "-", b[32] = "-", d[32] = "";
    double va = mc_jnum(ma, k), vb = mc_jnum(mb, k);
    if (how == C_RATE || how == C_BYTES) {
        if (ma) mc_fmt_bytes(a, sizeof(a), va, how == C_RATE);
        if (mb) mc_fmt_bytes(b, sizeof(b), vb, how == C_RATE);
        if (ma && mb) mc_fmt_bytes(d, sizeof(d), vb - va, 1);
    } else {
        if (ma) snprintf(a, sizeof(a), "%.0f", va);
        if (mb) snprintf(b, sizeof(b), "%.0f", vb);
        if (ma && mb && how == C_COUNT) snprintf(d, sizeof(d), "%+.0f", vb - va);
        if (ma && mb && how == C_PERCENT && va)
            snprintf(d, sizeof(d), "%+.1f%%", (vb - va) / va * 100);
    }
    fprintf(out, "  %-24s %14s %14s %14s\n", label, a, b, d);
}

static void diff_body(json_t *da, json_t *db, const char *na, const char *nb, FILE *out)
{
    json_t *docs[2] = {da, db}, *roots[2] = {mc_diff_root(da), mc_diff_root(db)};
    const char *names[2] = {na, nb};
    fprintf(out, "memcreep diff\n");
    for (int i = 0; i < 2; i++) {
        json_t *r = roots[i];
        fprintf(out, "  %c: %s  (%s, %s", i ? 'B' : 'A', names[i],
                r ? base_name(mc_jstr(r, "exe")) : "?",
                mc_jstr(json_object_get(docs[i], "summary"), "verdict"));
        if (json_object_get(docs[i], "load"))
            fprintf(out, ", %s load", mc_jstr(json_object_get(docs[i], "load"), "proto"));
        fprintf(out, ")\n");
    }
    int per_unit = mc_diff_per_unit(da, db);
    const char *rate = per_unit ? "per_unit" : "per_min";
    fprintf(out, "\n  %-24s %14s %14s %14s\n", "", "A", "B", "B - A");
    fprintf(out, "  %-24s %14s %14s\n", "verdict",
            mc_jstr(json_object_get(da, "summary"), "verdict"),
            mc_jstr(json_object_get(db, "summary"), "verdict"));
    json_t *ma = roots[0] ? json_object_get(roots[0], "metrics") : NULL;
    json_t *mb = roots[1] ? json_object_get(roots[1], "metrics") : NULL;
    char label[64];
    snprintf(label, sizeof(label), "live heap %s", per_unit ? "per unit" : "per min");
    metric_line(out, label, json_object_get(ma, "live_heap"), json_object_get(mb, "live_heap"),
                rate, C_RATE);
    snprintf(label, sizeof(label), "RSS %s", per_unit ? "per unit" : "per min");
    metric_line(out, label, json_object_get(ma, "rss"), json_object_get(mb, "rss"), rate, C_RATE);
    metric_line(out, "RSS at the end", json_object_get(ma, "rss"), json_object_get(mb, "rss"),
                "end", C_BYTES);
    metric_line(out, "descriptors at the end", json_object_get(ma, "fds"),
                json_object_get(mb, "fds"), "end", C_COUNT);
    json_t *la = json_object_get(json_object_get(da, "load"), "summary");
    json_t *lb = json_object_get(json_object_get(db, "load"), "summary");
    metric_line(out, "requests/s", la, lb, "requests_per_s", C_PERCENT);

    /* Processes, matched by program name in the order they appear. */
    fprintf(out, "\n  %-24s %10s %14s %10s %14s\n", "process", "A", "heap", "B", "heap");
    json_t *p;
    size_t i;
    char used[1024] = {0};
    json_array_foreach (json_object_get(da, "processes"), i, p) {
        const char *exe = base_name(mc_jstr(p, "exe"));
        json_t *q = mc_diff_match(db, p, used, sizeof(used));
        char ha[32] = "-", hb[32] = "-";
        json_t *hpa = json_object_get(json_object_get(p, "metrics"), "live_heap");
        json_t *hpb = q ? json_object_get(json_object_get(q, "metrics"), "live_heap") : NULL;
        if (hpa) mc_fmt_bytes(ha, sizeof(ha), mc_jnum(hpa, rate), 1);
        if (hpb) mc_fmt_bytes(hb, sizeof(hb), mc_jnum(hpb, rate), 1);
        fprintf(out, "  %-24.24s %10s %14s %10s %14s\n", exe, hpa ? mc_jstr(hpa, "verdict") : "-",
                ha, hpb ? mc_jstr(hpb, "verdict") : "-", hb);
    }
    json_array_foreach (json_object_get(db, "processes"), i, p) {
        if (i < sizeof(used) && used[i]) continue;
        json_t *hpb = json_object_get(json_object_get(p, "metrics"), "live_heap");
        char hb[32] = "-";
        if (hpb) mc_fmt_bytes(hb, sizeof(hb), mc_jnum(hpb, rate), 1);
        fprintf(out, "  %-24.24s %10s %14s %10s %14s\n", base_name(mc_jstr(p, "exe")), "-", "-",
                hpb ? mc_jstr(hpb, "verdict") : "-", hb);
    }

    /* Stacks, matched by place in the code, largest change first. */
    struct mc_diff_row *rows;
    size_t n = mc_diff_stacks(da, db, per_unit, &rows);
    if (n)
        fprintf(out, "\n  stacks (bytes %s)  %10s %10s %10s   (then the site and two callers)\n",
                per_unit ? "per unit" : "per min", "A", "B", "B - A");
    for (size_t r = 0; r < n && r < DIFF_STACKS; r++) {
        char a[32], b[32], d[32];
        cell_bytes(a, sizeof(a), rows[r].in[0], rows[r].v[0]);
        cell_bytes(b, sizeof(b), rows[r].in[1], rows[r].v[1]);
        mc_fmt_bytes(d, sizeof(d), rows[r].v[1] - rows[r].v[0], 1);
        const char *note = !rows[r].in[1] ? "  (gone)" : !rows[r].in[0] ? "  (new)" : "";
        fprintf(out, "  %-24s %10s %10s %10s%s\n      at %s\n", "", a, b, d, note, rows[r].key);
    }
    free(rows);
}

void mc_report_diff(json_t *a, json_t *b, const char *na, const char *nb, FILE *out)
{
    struct mc_text_buf tb;
    int ok = mc_text_begin(&tb) == 0;
    diff_body(a, b, na, nb, ok ? tb.f : out);
    mc_text_end(&tb, out);
}
