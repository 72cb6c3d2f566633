/* html.c - report.html: a run (or the h1 and h2 runs of one target) as one
 * self-contained page. The verdict and the findings first; then for every
 * process the picture over time (RSS, live heap, allocator, descriptors,
 * sockets, threads) with the requests on a second axis when the load was
 * driven, the growing stacks as small multiples, the verdict table with
 * each stack unfolding to its frames (<details>: no script), the Python
 * section; the load's rounds; the whole tree; the flame graph of growth;
 * how the run ended. Rendered from the result document only. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/findings.h"
#include "common/util.h"
#include "report/html.h"
#include "analysis/jget.h"
#include "report/result.h"

#define SMALL_MULTIPLES 6 /* growing stacks drawn per process */
#define PY_ROWS         12

/* A table cell holding escaped text; cls is "l" for text columns. */
static void cell(FILE *out, const char *cls, const char *text)
{
    fprintf(out, "<td%s%s%s>", cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
    mc_html_esc(out, text);
    fputs("</td>", out);
}

/* A table cell holding one number printed with fmt. */
static void cellf(FILE *out, const char *fmt, double v)
{
    char b[48];
    snprintf(b, sizeof(b), fmt, v);
    cell(out, NULL, b);
}

static void cell_bytes(FILE *out, double v, int sign)
{
    char b[32];
    mc_fmt_bytes(b, sizeof(b), v, sign);
    cell(out, NULL, b);
}

/* A stack's site and callers that unfold to every frame. */
static void stack_details(FILE *out, json_t *s)
{
    json_t *frames = json_object_get(s, "frames");
    size_t site = (size_t)json_integer_value(json_object_get(s, "site"));
    char t[600] = "[stack not recorded: table full]";
    if (site < json_array_size(frames))
        mc_report_frame_text(json_array_get(frames, site), t, sizeof(t));
    fputs("<details><summary class=\"mono\">", out);
    mc_html_esc(out, t);
    fputs("</summary><ol class=\"mono\">", out);
    json_t *f;
    size_t i;
    json_array_foreach (frames, i, f) {
        mc_report_frame_text(f, t, sizeof(t));
        fprintf(out, "<li%s>", i < site ? " class=\"muted\"" : "");
        mc_html_esc(out, t);
        fputs("</li>", out);
    }
    fputs("</ol></details>", out);
}

/* The chart of one series of a process (or the tree) against time, with
 * the work on the right axis when there is some. */
static void series_chart(FILE *out, json_t *series, const char *key, const char *title,
                         enum mc_unit unit, const char *work_label)
{
    size_t n, nt, nw = 0;
    double *y = mc_html_doubles(json_object_get(series, key), &n);
    double *t = mc_html_doubles(json_object_get(series, "t"), &nt);
    double *w = work_label ? mc_html_doubles(json_object_get(series, "work"), &nw) : NULL;
    if (y && t && nt == n) {
        struct mc_chart c = {.title = title,
                             .x = t,
                             .y = y,
                             .n = n,
                             .unit = unit,
                             .x_label = "s",
                             .y2 = nw == n ? w : NULL,
                             .y2_label = work_label};
        mc_svg_chart(out, &c);
    }
    free(y);
    free(t);
    free(w);
}

/* What the right axis counts: the load's requests, other work units, or
 * nothing when no work was counted. */
static const char *work_label(json_t *doc, json_t *series)
{
    json_t *w = json_object_get(series, "work");
    size_t n = json_array_size(w);
    if (n < 2 || mc_jnum(json_object_get(doc, "run"), "samples") < 2) return NULL;
    if (json_number_value(json_array_get(w, n - 1)) == json_number_value(json_array_get(w, 0)))
        return NULL;
    return json_object_get(doc, "load") ? "requests" : "work units";
}

static const struct {
    const char *key, *title;
    enum mc_unit unit;
} charts[] = {{"rss", "RSS", MC_UNIT_BYTES},
              {"live_heap", "live heap", MC_UNIT_BYTES},
              {"allocator_held", "allocator held", MC_UNIT_BYTES},
              {"fds", "descriptors", MC_UNIT_COUNT},
              {"sockets", "sockets", MC_UNIT_COUNT},
              {"threads", "threads", MC_UNIT_COUNT}};

static void picture(FILE *out, json_t *doc, json_t *series, int preloaded)
{
    const char *wl = work_label(doc, series);
    fputs("<div class=\"grid\">\n", out);
    for (size_t i = 0; i < sizeof(charts) / sizeof(charts[0]); i++) {
        if (!preloaded && (i == 1 || i == 2)) continue; /* no heap without the preload */
        series_chart(out, series, charts[i].key, charts[i].title, charts[i].unit, wl);
    }
    fputs("</div>\n", out);
}

static void metrics_table(FILE *out, json_t *m, int per_unit)
{
    fprintf(out,
            "<table><tr><th class=\"l\"></th><th>start</th><th>end</th><th>per min</th>"
            "%s<th class=\"l\">verdict</th></tr>\n",
            per_unit ? "<th>per unit</th>" : "");
    for (size_t i = 0; i < MC_REPORT_METRICS; i++) {
        json_t *x = json_object_get(m, mc_report_metrics[i][0]);
        if (!mc_report_metric_shown(i, x)) continue;
        char c[4][32];
        mc_report_metric_cells(x, per_unit, c);
        fputs("<tr>", out);
        cell(out, "l", mc_report_metrics[i][1]);
        for (int k = 0; k < (per_unit ? 4 : 3); k++)
            cell(out, NULL, c[k]);
        fputs("<td class=\"l\">", out);
        mc_html_badge(out, mc_jstr(x, "verdict"));
        fputs("</td></tr>\n", out);
    }
    fputs("</table>\n", out);
}

/* The stacks that grew, each as a small chart of its live bytes. */
static void small_multiples(FILE *out, json_t *p)
{
    size_t nt, i, shown = 0;
    double *t = mc_html_doubles(json_object_get(json_object_get(p, "series"), "t"), &nt);
    json_t *s;
    json_array_foreach (json_object_get(p, "stacks"), i, s) {
        if (shown == SMALL_MULTIPLES) break;
        if (!strcmp(mc_jstr(s, "verdict"), "STEADY") && mc_jnum(s, "net_growth") <= 0) continue;
        size_t n;
        double *y = mc_html_doubles(json_object_get(json_object_get(s, "series"), "bytes"), &n);
        if (y && n == nt) {
            if (!shown++) fputs("<h3>Growing stacks</h3>\n<div class=\"grid\">\n", out);
            json_t *frames = json_object_get(s, "frames");
            json_t *f =
                json_array_get(frames, (size_t)json_integer_value(json_object_get(s, "site")));
            char site[280], title[300];
            mc_report_frame_text(f, site, sizeof(site));
            snprintf(title, sizeof(title), "%s %s", mc_jstr(s, "verdict"), site);
            struct mc_chart c = {.title = title,
                                 .x = t,
                                 .y = y,
                                 .n = n,
                                 .unit = MC_UNIT_BYTES,
                                 .x_label = "s",
                                 .width = 340,
                                 .height = 150};
            mc_svg_chart(out, &c);
        }
        free(y);
    }
    if (shown) fputs("</div>\n", out);
    free(t);
}

static void stacks_table(FILE *out, json_t *p, int top)
{
    json_t *stacks = json_object_get(p, "stacks");
    if (!json_array_size(stacks)) return;
    int per_unit = json_is_true(json_object_get(p, "per_unit"));
    fprintf(out,
            "<h3>Stacks</h3>\n<table><tr><th class=\"l\">verdict</th><th>growth/min</th>"
            "<th>objects/min</th>%s<th>net</th><th>live</th><th>p-value</th>"
            "<th class=\"l\">site (open for the frames)</th></tr>\n",
            per_unit ? "<th>per unit</th>" : "");
    json_t *s;
    size_t i;
    json_array_foreach (stacks, i, s) {
        if (top > 0 && (int)i >= top) {
            fprintf(out,
                    "<tr><td class=\"l muted\" colspan=\"8\">%zu more stacks in "
                    "result.json</td></tr>\n",
                    json_array_size(stacks) - i);
            break;
        }
        char o[32], pv[32];
        fputs("<tr><td class=\"l\">", out);
        mc_html_badge(out, mc_jstr(s, "verdict"));
        fputs("</td>", out);
        cell_bytes(out, mc_jnum(s, "bytes_per_min"), 1);
        mc_fmt_count(o, sizeof(o), mc_jnum(s, "objects_per_min"), 1);
        cell(out, NULL, o);
        if (per_unit) cell_bytes(out, mc_jnum(s, "bytes_per_unit"), 1);
        cell_bytes(out, mc_jnum(s, "net_growth"), 1);
        cell_bytes(out, mc_jnum(s, "live_bytes"), 0);
        snprintf(pv, sizeof(pv), "%.2g", mc_jnum(s, "p_value"));
        cell(out, NULL, json_object_get(s, "p_value") ? pv : "");
        fputs("<td class=\"l\">", out);
        stack_details(out, s);
        fputs("</td></tr>\n", out);
    }
    fputs("</table>\n", out);
}

/* A tiny chart of a Python type's counts, one point per snapshot. */
static void sparkline(FILE *out, json_t *arr)
{
    size_t n;
    double *y = mc_html_doubles(arr, &n);
    if (n >= 2) {
        double lo = y[0], hi = y[0];
        for (size_t i = 1; i < n; i++) {
            lo = fmin(lo, y[i]);
            hi = fmax(hi, y[i]);
        }
        fprintf(out,
                "<svg width=\"120\" height=\"22\" viewBox=\"0 0 120 22\"><polyline "
                "fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"",
                MC_HTML_LINE);
        for (size_t i = 0; i < n; i++)
            fprintf(out, "%.1f,%.1f ", 2 + 116.0 * (double)i / (double)(n - 1),
                    hi > lo ? 20 - 18 * (y[i] - lo) / (hi - lo) : 11.0);
        fputs("\"/></svg>", out);
    }
    free(y);
}

static void python_section(FILE *out, json_t *py, int per_unit)
{
    fprintf(out,
            "<h3>Python</h3>\n<p>%.0f snapshots (%.0f skipped, "
            "%.0f late), the last took %.1f ms%s.</p>\n",
            mc_jnum(py, "snapshots"), mc_jnum(py, "skipped"), mc_jnum(py, "late"),
            mc_jnum(py, "snapshot_ms"),
            json_is_true(json_object_get(py, "finalized")) ? "; the interpreter finalized" : "");
    json_t *e;
    size_t i;
    fprintf(out,
            "<table><tr><th class=\"l\">object type</th><th>start</th><th>end</th>"
            "<th>per min</th>%s<th class=\"l\">verdict</th><th class=\"l\">count</th>"
            "<th class=\"l\">held by</th></tr>\n",
            per_unit ? "<th>per unit</th>" : "");
    json_array_foreach (json_object_get(py, "types"), i, e) {
        if (i == PY_ROWS) break;
        fputs("<tr>", out);
        cell(out, "l mono", mc_jstr(e, "type"));
        cellf(out, "%.0f", mc_jnum(e, "start"));
        cellf(out, "%.0f", mc_jnum(e, "end"));
        cellf(out, "%+.1f", mc_jnum(e, "per_min"));
        if (per_unit) cellf(out, "%+.2f", mc_jnum(e, "per_unit"));
        fputs("<td class=\"l\">", out);
        mc_html_badge(out, mc_jstr(e, "verdict"));
        fputs("</td><td class=\"l\">", out);
        sparkline(out, json_object_get(e, "series"));
        fputs("</td>", out);
        cell(out, "l mono", mc_jstr(e, "held_by"));
        fputs("</tr>\n", out);
    }
    fputs("</table>\n", out);
    if (json_array_size(json_object_get(py, "lines"))) {
        fprintf(out,
                "<table><tr><th class=\"l\">Python line (growth while traced)</th>"
                "<th>objects</th><th>per min</th>%s</tr>\n",
                per_unit ? "<th>per unit</th>" : "");
        json_array_foreach (json_object_get(py, "lines"), i, e) {
            if (i == PY_ROWS) break;
            fputs("<tr>", out);
            cell(out, "l mono", mc_jstr(e, "line"));
            cellf(out, "%.0f", mc_jnum(e, "objects"));
            cell_bytes(out, mc_jnum(e, "bytes_per_min"), 1);
            if (per_unit) cell_bytes(out, mc_jnum(e, "bytes_per_unit"), 1);
            fputs("</tr>\n", out);
        }
        fputs("</table>\n", out);
    }
    if (json_array_size(json_object_get(py, "cycle_garbage"))) {
        fprintf(out,
                "<table><tr><th class=\"l\">cycle garbage (freed only by the collector)"
                "</th><th>objects</th><th>per min</th>%s</tr>\n",
                per_unit ? "<th>per unit</th>" : "");
        json_array_foreach (json_object_get(py, "cycle_garbage"), i, e) {
            if (i == PY_ROWS) break;
            fputs("<tr>", out);
            cell(out, "l mono", mc_jstr(e, "type"));
            cellf(out, "%.0f", mc_jnum(e, "total"));
            cellf(out, "%+.1f", mc_jnum(e, "per_min"));
            if (per_unit) cellf(out, "%+.2f", mc_jnum(e, "per_unit"));
            fputs("</tr>\n", out);
        }
        fputs("</table>\n", out);
    }
}

static void findings(FILE *out, json_t *doc)
{
    json_t *f;
    size_t i;
    json_t *list = json_object_get(json_object_get(doc, "summary"), "findings");
    if (!json_array_size(list)) return;
    fputs("<h2>Findings</h2>\n", out);
    json_array_foreach (list, i, f) {
        const char *kind = mc_jstr(f, "kind");
        int info = strcmp(mc_jstr(f, "severity"), "creep") != 0;
        fprintf(out, "<div class=\"finding%s\"><b>", info ? " info" : "");
        mc_html_esc(out, kind);
        fprintf(out, "</b> in process %lld",
                (long long)json_integer_value(json_object_get(f, "pid")));
        json_t *ev = json_object_get(f, "evidence");
        if (ev && json_object_get(ev, "start") && json_object_get(ev, "end"))
            fprintf(out, ": %.0f &rarr; %.0f, %+.1f per minute", mc_jnum(ev, "start"),
                    mc_jnum(ev, "end"), mc_jnum(ev, "per_min"));
        if (ev && json_object_get(ev, "per_unit"))
            fprintf(out, ", %+.2f per 1000 units", mc_jnum(ev, "per_unit") * 1000);
        if (mc_result_finding_kind(f) == MC_F_ALLOCATOR_RETENTION) {
            char a[32], b[32];
            mc_fmt_bytes(a, sizeof(a), mc_jnum(ev, "allocator_free"), 0);
            mc_fmt_bytes(b, sizeof(b), mc_jnum(ev, "recovered"), 0);
            fprintf(out, ": glibc keeps %s free; malloc_trim(0) gave back %s", a, b);
        }
        fputs("<ul>", out);
        json_t *x;
        size_t k;
        json_array_foreach (json_object_get(f, "stacks"), k, x) {
            fprintf(out, "<li>%.0f ", mc_jnum(x, "count"));
            mc_html_esc(out, mc_jstr(x, "what"));
            if (json_object_get(x, "per_unit"))
                fprintf(out, " (%+.2f per 1000 units)", mc_jnum(x, "per_unit") * 1000);
            fputs(", from ", out);
            stack_details(out, x);
            fputs("</li>", out);
        }
        json_array_foreach (json_object_get(f, "types"), k, x) {
            fputs("<li><code>", out);
            mc_html_esc(out, mc_jstr(x, "type"));
            fputs("</code> ", out);
            if (json_object_get(x, "total"))
                fprintf(out, "%.0f objects", mc_jnum(x, "total"));
            else
                fprintf(out, "%.0f &rarr; %.0f", mc_jnum(x, "start"), mc_jnum(x, "end"));
            if (json_object_get(x, "per_unit"))
                fprintf(out, ", %+.2f per unit", mc_jnum(x, "per_unit"));
            if (json_object_get(x, "held_by")) {
                fputs(", held by <code>", out);
                mc_html_esc(out, mc_jstr(x, "held_by"));
                fputs("</code>", out);
            }
            fputs("</li>", out);
        }
        json_array_foreach (json_object_get(f, "lines"), k, x) {
            char b[32];
            mc_fmt_bytes(b, sizeof(b), mc_jnum(x, "bytes_per_unit"), 1);
            fputs("<li>grows at <code>", out);
            mc_html_esc(out, mc_jstr(x, "line"));
            fprintf(out, "</code> %s per unit</li>", b);
        }
        json_array_foreach (json_object_get(f, "python_lines"), k, x) {
            fputs("<li>opened at <code>", out);
            mc_html_esc(out, mc_jstr(x, "line"));
            fprintf(out, "</code> (%.0f sockets still open)</li>", mc_jnum(x, "sockets"));
        }
        json_array_foreach (json_object_get(f, "peers"), k, x) {
            fputs(k ? ", " : "<li>peers: ", out);
            mc_html_esc(out, mc_jstr(x, "peer"));
            fputc(' ', out);
            mc_html_esc(out, mc_jstr(x, "state"));
            fprintf(out, " &times;%.0f", mc_jnum(x, "count"));
        }
        if (json_array_size(json_object_get(f, "peers"))) fputs("</li>", out);
        fputs("</ul></div>\n", out);
    }
}

static void load_section(FILE *out, json_t *load)
{
    json_t *sum = json_object_get(load, "summary");
    json_t *lat = json_object_get(sum, "latency_us");
    fputs("<h2>Load</h2>\n<p>", out);
    mc_html_esc(out, mc_jstr(load, "proto"));
    fputs(" <code>", out);
    mc_html_esc(out, mc_jstr(load, "url"));
    fprintf(out,
            "</code>, %lld connections%s: %.0f requests, %.0f req/s, latency p50 %.0f us, "
            "p99 %.0f us. Throughput across rounds: ",
            (long long)json_integer_value(json_object_get(load, "connections")),
            json_is_true(json_object_get(load, "new_conn")) ? " (new per request)" : "",
            mc_jnum(sum, "requests"), mc_jnum(sum, "requests_per_s"), mc_jnum(lat, "p50"),
            mc_jnum(lat, "p99"));
    mc_html_badge(out, mc_jstr(json_object_get(load, "throughput"), "verdict"));
    fputs("</p>\n", out);
    json_t *rounds = json_object_get(load, "rounds");
    size_t n = json_array_size(rounds);
    if (!n) return;
    double *x = calloc(n, sizeof(double)), *rps = calloc(n, sizeof(double));
    double *heap = calloc(n, sizeof(double));
    fputs("<div class=\"grid\"><table><tr><th>round</th><th>requests</th><th>&Delta; live heap</th>"
          "<th>&Delta; RSS</th><th>req/s</th><th>live heap</th></tr>\n",
          out);
    json_t *r;
    size_t i;
    json_array_foreach (rounds, i, r) {
        if (x) x[i] = mc_jnum(r, "round");
        if (rps) rps[i] = mc_jnum(r, "requests_per_s");
        if (heap) heap[i] = mc_jnum(r, "live_heap");
        fprintf(out, "<tr><td>%lld</td><td>%.0f</td>",
                (long long)json_integer_value(json_object_get(r, "round")), mc_jnum(r, "requests"));
        cell_bytes(out, mc_jnum(r, "delta_live_heap"), 1);
        cell_bytes(out, mc_jnum(r, "delta_rss"), 1);
        fprintf(out, "<td>%.0f</td>", mc_jnum(r, "requests_per_s"));
        cell_bytes(out, mc_jnum(r, "live_heap"), 0);
        fputs("</tr>\n", out);
    }
    fputs("</table>\n", out);
    if (x && rps && heap && n >= 2) {
        struct mc_chart c = {.title = "requests/s per round",
                             .x = x,
                             .y = rps,
                             .n = n,
                             .unit = MC_UNIT_COUNT,
                             .x_label = "round"};
        mc_svg_chart(out, &c);
        struct mc_chart d = {.title = "live heap after each round",
                             .x = x,
                             .y = heap,
                             .n = n,
                             .unit = MC_UNIT_BYTES,
                             .x_label = "round"};
        mc_svg_chart(out, &d);
    }
    fputs("</div>\n", out);
    free(x);
    free(rps);
    free(heap);
}

static void run_section(FILE *out, json_t *doc, int top)
{
    json_t *run = json_object_get(doc, "run");
    json_t *procs = json_object_get(doc, "processes");
    size_t i;
    fputs("<h2>", out);
    mc_html_badge(out, mc_result_verdict(doc));
    fputs(" <code>", out);
    mc_html_command(out, doc);
    fputs("</code></h2>\n<p>Started ", out);
    mc_html_esc(out, mc_jstr(run, "started"));
    fprintf(out, ", ran %.1f s, %lld samples every %.2f s, stopped by ", mc_jnum(run, "duration_s"),
            (long long)json_integer_value(json_object_get(run, "samples")),
            mc_jnum(run, "interval_s"));
    mc_html_esc(out, mc_jstr(run, "stopped_by"));
    long long nc = (long long)json_integer_value(
        json_object_get(json_object_get(doc, "summary"), "creeping_stacks"));
    char att[256];
    int attached = mc_report_attach_text(doc, att, sizeof(att));
    fprintf(out, ". %lld creeping stack%s.%s", nc, nc == 1 ? "" : "s",
            !attached && json_is_false(json_object_get(run, "preload"))
                ? " The preload could not load (statically linked?): RSS only."
                : "");
    if (attached) {
        att[0] = (char)(att[0] - 'a' + 'A');
        fputc(' ', out);
        mc_html_esc(out, att);
        fputc('.', out);
    }
    fputs("</p>\n", out);
    findings(out, doc);
    json_t *p;
    json_array_foreach (procs, i, p) {
        char end[160];
        mc_report_end_text(json_object_get(p, "end"), end, sizeof(end));
        fprintf(out, "<h2>Process %lld <code>",
                (long long)json_integer_value(json_object_get(p, "pid")));
        mc_html_esc(out, mc_jstr(p, "exe"));
        fprintf(out, "</code>%s</h2>\n<p>",
                json_is_true(json_object_get(p, "root")) ? " (target)" : "");
        mc_html_esc(out, end);
        int per_unit = json_is_true(json_object_get(p, "per_unit"));
        if (per_unit)
            fprintf(out, "; per unit = per %s",
                    json_object_get(doc, "load") ? "request of the load" : "work unit");
        fputs(".</p>\n", out);
        picture(out, doc, json_object_get(p, "series"),
                json_is_true(json_object_get(p, "preloaded")));
        metrics_table(out, json_object_get(p, "metrics"), per_unit);
        small_multiples(out, p);
        stacks_table(out, p, top);
        json_t *py = json_object_get(p, "python");
        if (py) python_section(out, py, per_unit);
    }
    json_t *load = json_object_get(doc, "load");
    if (load) load_section(out, load);
    if (json_array_size(procs) > 1) {
        fprintf(out, "<h2>Whole tree (%zu processes)</h2>\n", json_array_size(procs));
        picture(out, doc, json_object_get(json_object_get(doc, "tree"), "series"), 1);
        metrics_table(out, json_object_get(json_object_get(doc, "tree"), "metrics"), 0);
    }
    fputs("<h2>Flame graph of growth</h2>\n<p class=\"muted\">What grew between the first and "
          "the last sample, by stack: the outermost caller at the bottom, the allocation at the "
          "top, widths in bytes (the same numbers as growth.folded).</p>\n",
          out);
    if (!mc_svg_flame(out, doc, 1200)) fputs("<p>Nothing grew.</p>\n", out);
    fputs("<h2>How the run ended</h2>\n<ul>", out);
    fputs("<li>memcreep stopped watching: ", out);
    mc_html_esc(out, mc_jstr(run, "stopped_by"));
    fputs("</li>", out);
    json_array_foreach (procs, i, p) {
        char end[160];
        mc_report_end_text(json_object_get(p, "end"), end, sizeof(end));
        fprintf(out,
                "<li>process %lld: ", (long long)json_integer_value(json_object_get(p, "pid")));
        mc_html_esc(out, end);
        fprintf(out, " after %.1f s</li>", mc_jnum(json_object_get(p, "end"), "t_end"));
    }
    fputs("</ul>\n", out);
}

int mc_report_html(json_t **docs, int n, FILE *out, int top)
{
    mc_html_begin(out, n == 2 ? "memcreep: h1 and h2" : "memcreep report");
    fputs("<h1>memcreep report</h1>\n", out);
    if (n == 2) {
        fputs("<p>The same target, a fresh start for each protocol.</p>\n<table><tr>"
              "<th class=\"l\">proto</th><th>req/s</th><th>heap/request</th>"
              "<th class=\"l\">verdict</th></tr>\n",
              out);
        for (int i = 0; i < n; i++) {
            json_t *load = json_object_get(docs[i], "load");
            json_t *heap = json_object_get(
                json_object_get(json_object_get(docs[i], "tree"), "metrics"), "live_heap");
            fputs("<tr>", out);
            cell(out, "l", mc_jstr(load, "proto"));
            fprintf(out, "<td>%.0f</td>",
                    mc_jnum(json_object_get(load, "summary"), "requests_per_s"));
            cell_bytes(out, mc_jnum(heap, "per_unit"), 1);
            fputs("<td class=\"l\">", out);
            mc_html_badge(out, mc_result_verdict(docs[i]));
            fputs("</td></tr>\n", out);
        }
        fputs("</table>\n", out);
    }
    for (int i = 0; i < n; i++) {
        if (n > 1) fputs("<hr>\n", out);
        run_section(out, docs[i], top);
    }
    fprintf(out,
            "<p class=\"muted\">Rendered by memcreep from result.json (schema %s, version "
            "%d).</p>\n",
            MC_RESULT_SCHEMA, MC_RESULT_VERSION);
    mc_html_end(out);
    return fflush(out) == 0 && !ferror(out) ? 0 : -EIO;
}
