/* html_diff.c - `memcreep diff A B --format html`: two runs on one page.
 * The verdicts and main rates, the root processes' RSS, live heap,
 * descriptors and (with load) throughput per round drawn over each other,
 * each process matched by program, and the stacks matched by place in the
 * code with their change. The matching is diff.c's. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "report/diff.h"
#include "report/html.h"
#include "analysis/jget.h"
#include "report/result.h"

static void bytes_td(FILE *out, int present, double v, int sign)
{
    char b[32] = "-";
    if (present) mc_fmt_bytes(b, sizeof(b), v, sign);
    fprintf(out, "<td>%s</td>", b);
}

/* One series of the two roots over time, A and B in their colours. */
static void overlay(FILE *out, json_t *ra, json_t *rb, const char *key, const char *title,
                    enum mc_unit unit)
{
    json_t *sa = json_object_get(ra, "series"), *sb = json_object_get(rb, "series");
    size_t na, nta, nb, ntb;
    double *ya = mc_html_doubles(json_object_get(sa, key), &na);
    double *ta = mc_html_doubles(json_object_get(sa, "t"), &nta);
    double *yb = mc_html_doubles(json_object_get(sb, key), &nb);
    double *tb = mc_html_doubles(json_object_get(sb, "t"), &ntb);
    if (ya && ta && na == nta) {
        struct mc_chart c = {.title = title,
                             .x = ta,
                             .y = ya,
                             .n = na,
                             .unit = unit,
                             .x_label = "s",
                             .legend_a = "A",
                             .legend_b = "B",
                             .width = 420,
                             .height = 200};
        if (yb && tb && nb == ntb) {
            c.y_b = yb;
            c.x_b = tb;
            c.n_b = nb;
        }
        mc_svg_chart(out, &c);
    }
    free(ya);
    free(ta);
    free(yb);
    free(tb);
}

/* Requests per second by round, A and B, when both drove load. */
static void rounds_overlay(FILE *out, json_t *a, json_t *b)
{
    json_t *r[2] = {json_object_get(json_object_get(a, "load"), "rounds"),
                    json_object_get(json_object_get(b, "load"), "rounds")};
    size_t n[2] = {json_array_size(r[0]), json_array_size(r[1])};
    if (n[0] < 2 || n[1] < 2) return;
    double *x[2], *y[2];
    for (int s = 0; s < 2; s++) {
        x[s] = calloc(n[s], sizeof(double));
        y[s] = calloc(n[s], sizeof(double));
        for (size_t i = 0; x[s] && y[s] && i < n[s]; i++) {
            x[s][i] = (double)(i + 1);
            y[s][i] = mc_jnum(json_array_get(r[s], i), "requests_per_s");
        }
    }
    if (x[0] && y[0] && x[1] && y[1]) {
        struct mc_chart c = {.title = "requests/s per round",
                             .x = x[0],
                             .y = y[0],
                             .n = n[0],
                             .x_b = x[1],
                             .y_b = y[1],
                             .n_b = n[1],
                             .unit = MC_UNIT_COUNT,
                             .x_label = "round",
                             .legend_a = "A",
                             .legend_b = "B",
                             .width = 420,
                             .height = 200};
        mc_svg_chart(out, &c);
    }
    for (int s = 0; s < 2; s++) {
        free(x[s]);
        free(y[s]);
    }
}

/* A process of either run (pa, pb; NULL where it has no match): its
 * program, then the live heap's verdict and rate in each. */
static void proc_row(FILE *out, json_t *named, json_t *pa, json_t *pb, const char *rate)
{
    const char *exe = mc_jstr(named, "exe"), *base = strrchr(exe, '/');
    fputs("<tr><td class=\"l mono\">", out);
    mc_html_esc(out, base ? base + 1 : exe);
    fputs("</td>", out);
    json_t *side[2] = {pa, pb};
    for (int k = 0; k < 2; k++) {
        json_t *heap =
            side[k] ? json_object_get(json_object_get(side[k], "metrics"), "live_heap") : NULL;
        fputs("<td class=\"l\">", out);
        if (heap) mc_html_badge(out, mc_jstr(heap, "verdict"));
        fputs(heap ? "</td>" : "-</td>", out);
        bytes_td(out, heap != NULL, mc_jnum(heap, rate), 1);
    }
    fputs("</tr>\n", out);
}

static void rate_row(FILE *out, const char *label, json_t *ma, json_t *mb, const char *k, int sign)
{
    if (!ma && !mb) return;
    fputs("<tr><td class=\"l\">", out);
    mc_html_esc(out, label);
    fputs("</td>", out);
    bytes_td(out, ma != NULL, mc_jnum(ma, k), sign);
    bytes_td(out, mb != NULL, mc_jnum(mb, k), sign);
    bytes_td(out, ma && mb, mc_jnum(mb, k) - mc_jnum(ma, k), 1);
    fputs("</tr>\n", out);
}

int mc_report_diff_html(json_t *a, json_t *b, const char *na, const char *nb, FILE *out)
{
    json_t *docs[2] = {a, b}, *roots[2] = {mc_diff_root(a), mc_diff_root(b)};
    const char *names[2] = {na, nb};
    int per_unit = mc_diff_per_unit(a, b);
    const char *rate = per_unit ? "per_unit" : "per_min";
    mc_html_begin(out, "memcreep diff");
    fputs("<h1>memcreep diff</h1>\n<table>", out);
    for (int i = 0; i < 2; i++) {
        fprintf(out, "<tr><td class=\"l\"><b style=\"color:%s\">%c</b></td><td class=\"l\">",
                i ? MC_HTML_LINE_B : MC_HTML_LINE, i ? 'B' : 'A');
        mc_html_badge(out, mc_result_verdict(docs[i]));
        fputs("</td><td class=\"l mono\">", out);
        mc_html_esc(out, names[i]);
        fputs("</td><td class=\"l mono\">", out);
        mc_html_command(out, docs[i]);
        fputs("</td></tr>\n", out);
    }
    fputs("</table>\n<h2>The target</h2>\n", out);
    json_t *ma = json_object_get(roots[0], "metrics"), *mb = json_object_get(roots[1], "metrics");
    fputs("<table><tr><th class=\"l\"></th><th>A</th><th>B</th><th>B &minus; A</th></tr>\n", out);
    char label[64];
    snprintf(label, sizeof(label), "live heap %s", per_unit ? "per unit" : "per min");
    rate_row(out, label, json_object_get(ma, "live_heap"), json_object_get(mb, "live_heap"), rate,
             1);
    snprintf(label, sizeof(label), "RSS %s", per_unit ? "per unit" : "per min");
    rate_row(out, label, json_object_get(ma, "rss"), json_object_get(mb, "rss"), rate, 1);
    rate_row(out, "RSS at the end", json_object_get(ma, "rss"), json_object_get(mb, "rss"), "end",
             0);
    json_t *la = json_object_get(json_object_get(a, "load"), "summary");
    json_t *lb = json_object_get(json_object_get(b, "load"), "summary");
    if (la && lb)
        fprintf(out,
                "<tr><td class=\"l\">requests/s</td><td>%.0f</td><td>%.0f</td><td>%+.1f%%"
                "</td></tr>\n",
                mc_jnum(la, "requests_per_s"), mc_jnum(lb, "requests_per_s"),
                mc_jnum(la, "requests_per_s") > 0
                    ? 100 * (mc_jnum(lb, "requests_per_s") / mc_jnum(la, "requests_per_s") - 1)
                    : 0.0);
    fputs("</table>\n", out);
    if (roots[0] && roots[1]) {
        fputs("<div class=\"grid\">\n", out);
        overlay(out, roots[0], roots[1], "rss", "RSS", MC_UNIT_BYTES);
        overlay(out, roots[0], roots[1], "live_heap", "live heap", MC_UNIT_BYTES);
        overlay(out, roots[0], roots[1], "fds", "descriptors", MC_UNIT_COUNT);
        rounds_overlay(out, a, b);
        fputs("</div>\n", out);
    }

    fprintf(out,
            "<h2>Processes</h2>\n<table><tr><th class=\"l\">program</th><th class=\"l\">A"
            "</th><th>heap %s</th><th class=\"l\">B</th><th>heap %s</th></tr>\n",
            per_unit ? "per unit" : "per min", per_unit ? "per unit" : "per min");
    char used[1024] = {0};
    json_t *p;
    size_t i;
    json_array_foreach (json_object_get(a, "processes"), i, p)
        proc_row(out, p, p, mc_diff_match(b, p, used, sizeof(used)), rate);
    json_array_foreach (json_object_get(b, "processes"), i, p)
        if (i >= sizeof(used) || !used[i]) proc_row(out, p, NULL, p, rate);
    fputs("</table>\n", out);

    struct mc_diff_row *rows;
    size_t n = mc_diff_stacks(a, b, per_unit, &rows);
    if (n) {
        fprintf(out,
                "<h2>Stacks (bytes %s)</h2>\n<table><tr><th>A</th><th>B</th>"
                "<th>B &minus; A</th><th class=\"l\"></th><th class=\"l\">site &lt;- two callers"
                "</th></tr>\n",
                per_unit ? "per unit" : "per minute");
        for (size_t r = 0; r < n; r++) {
            fputs("<tr>", out);
            bytes_td(out, rows[r].in[0], rows[r].v[0], 1);
            bytes_td(out, rows[r].in[1], rows[r].v[1], 1);
            bytes_td(out, 1, rows[r].v[1] - rows[r].v[0], 1);
            fprintf(out, "<td class=\"l muted\">%s</td><td class=\"l mono\">",
                    !rows[r].in[1]   ? "gone"
                    : !rows[r].in[0] ? "new"
                                     : "");
            mc_html_esc(out, rows[r].key);
            fputs("</td></tr>\n", out);
        }
        fputs("</table>\n", out);
    }
    free(rows);
    mc_html_end(out);
    return fflush(out) == 0 && !ferror(out) ? 0 : -EIO;
}
