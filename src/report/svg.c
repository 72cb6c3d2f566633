/* svg.c - the pieces every HTML page is made of: escaping, the page frame
 * with its style, and line charts drawn as inline SVG (no script, no
 * external file: the page renders the same offline and in a mail client's
 * preview). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "report/html.h"

void mc_html_esc(FILE *out, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&#39;", out);
            break;
        default:
            fputc(*s, out);
        }
    }
}

static const char style[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1400px;color:#222;"
    "padding:0 1em}\n"
    "h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.25em;margin-top:1.6em;"
    "border-bottom:1px solid #ccc}h3{font-size:1.05em;margin:1.2em 0 .4em}\n"
    "table{border-collapse:collapse;margin:.4em 0}td,th{padding:2px 10px;text-align:right;"
    "vertical-align:top}th{background:#f2f2f2}td.l,th.l{text-align:left}\n"
    "tr:nth-child(even) td{background:#fafafa}\n"
    ".v{font-weight:600;padding:1px 6px;border-radius:3px}.CREEP{background:#fde2e1;"
    "color:#a40000}.PLATEAU{background:#fff3cd;color:#7a5a00}.STEADY{background:#e3f4e1;"
    "color:#1d6b1d}.UNKNOWN,.FALLING{background:#eee;color:#555}\n"
    ".grid{display:flex;flex-wrap:wrap;gap:8px}.grid svg{border:1px solid #e4e4e4;"
    "background:#fff}\n"
    ".finding{border-left:4px solid #a40000;padding:.3em .8em;margin:.6em 0;"
    "background:#fdf6f6}.finding.info{border-color:#b08800;background:#fffbef}\n"
    "code,.mono{font-family:ui-monospace,monospace;font-size:13px}\n"
    "details summary{cursor:pointer}details ol{margin:.2em 0 .4em;padding-left:2.2em;"
    "text-align:left}\n"
    ".muted{color:#777}.flame text{font:11px ui-monospace,monospace;pointer-events:none}\n";

void mc_html_begin(FILE *out, const char *title)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n"
          "<title>",
          out);
    mc_html_esc(out, title);
    fprintf(out, "</title>\n<style>\n%s</style></head>\n<body>\n", style);
}

void mc_html_badge(FILE *out, const char *v)
{
    static const char *known[] = {"CREEP", "PLATEAU", "STEADY", "FALLING"};
    const char *cls = "UNKNOWN";
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (!strcmp(v, known[i])) cls = known[i];
    fprintf(out, "<span class=\"v %s\">", cls);
    mc_html_esc(out, v);
    fputs("</span>", out);
}

void mc_html_command(FILE *out, json_t *doc)
{
    json_t *a;
    size_t i;
    json_array_foreach (json_object_get(json_object_get(doc, "run"), "command"), i, a) {
        if (i) fputc(' ', out);
        mc_html_esc(out, json_string_value(a));
    }
}

void mc_html_end(FILE *out)
{
    fputs("</body></html>\n", out);
}

double *mc_html_doubles(json_t *arr, size_t *n)
{
    *n = json_array_size(arr);
    if (!*n) return NULL;
    double *v = malloc(*n * sizeof(*v));
    if (!v) {
        *n = 0;
        return NULL;
    }
    for (size_t i = 0; i < *n; i++)
        v[i] = json_number_value(json_array_get(arr, i));
    return v;
}

/* More than enough for the 4 intervals asked of nice_step. */
#define MAX_TICKS 16

/* A "nice" step for about `ticks` intervals over span: 1, 2 or 5 times a
 * power of ten (Heckbert, "Nice numbers for graph labels", Graphics Gems,
 * 1990); for bytes, powers of two from 1 KiB up read better (1 MiB, not
 * 1.05 MB). */
static double nice_step(double span, int ticks, enum mc_unit unit)
{
    double raw = span / ticks;
    if (raw <= 0 || !isfinite(raw)) return 1;
    if (unit == MC_UNIT_BYTES && raw >= 1024) {
        double p = pow(2, floor(log2(raw)));
        return raw / p < 1.5 ? p : raw / p < 3 ? 2 * p : 4 * p;
    }
    double p = pow(10, floor(log10(raw))), f = raw / p;
    double step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
    return unit == MC_UNIT_COUNT && step < 1 ? 1 : step; /* no half a descriptor */
}

static void label(char *buf, size_t len, double v, enum mc_unit unit)
{
    if (unit == MC_UNIT_BYTES)
        mc_fmt_bytes(buf, len, v, 0);
    else if (fabs(v) < 1000)
        snprintf(buf, len, "%g", v); /* counts step by whole numbers */
    else
        mc_fmt_count(buf, len, v, 0);
}

/* The range [lo, hi] of one or two arrays, widened when flat so that a
 * constant shows as a line in the middle, and rounded out to whole steps. */
static void range(const double *a, size_t na, const double *b, size_t nb, enum mc_unit unit,
                  double *lo, double *hi, double *step)
{
    double mn = INFINITY, mx = -INFINITY;
    for (size_t i = 0; i < na; i++) {
        mn = fmin(mn, a[i]);
        mx = fmax(mx, a[i]);
    }
    for (size_t i = 0; b && i < nb; i++) {
        mn = fmin(mn, b[i]);
        mx = fmax(mx, b[i]);
    }
    /* A result file can hold any number: nothing measured is beyond an
     * exabyte, and an axis beyond it would have no whole steps. */
    const double lim = 1e18;
    if (!isfinite(mn) || !isfinite(mx)) mn = mx = 0;
    mn = fmax(fmin(mn, lim), -lim);
    mx = fmax(fmin(mx, lim), -lim);
    if (mx - mn < fmax(fabs(mx) * 1e-3, 1e-9)) {
        double pad = fmax(fabs(mx) * 0.1, unit == MC_UNIT_BYTES ? 1024 : 1);
        mn -= pad;
        mx += pad;
        if (mn < 0 && mx - pad >= 0) mn = 0;
    }
    *step = nice_step(mx - mn, 4, unit);
    *lo = floor(mn / *step) * *step;
    *hi = ceil(mx / *step) * *step;
    if (*hi <= *lo) *hi = *lo + *step;
}

/* The points of (x, y) as an SVG polyline in the plot box. */
static void polyline(FILE *out, const double *x, const double *y, size_t n, double x0, double x1,
                     double y0, double y1, int px, int py, int pw, int ph, const char *colour,
                     const char *extra)
{
    fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", colour,
            extra);
    for (size_t i = 0; i < n; i++) {
        double fx = x1 > x0 ? (x[i] - x0) / (x1 - x0) : 0.5;
        double fy = y1 > y0 ? (y[i] - y0) / (y1 - y0) : 0.5;
        /* Out of the box (a value beyond the axis, or not a number): on its
         * edge. */
        fx = isfinite(fx) ? fmax(fmin(fx, 1), 0) : 0;
        fy = isfinite(fy) ? fmax(fmin(fy, 1.05), -0.05) : 0;
        fprintf(out, "%.1f,%.1f ", px + fx * pw, py + ph - fy * ph);
    }
    fputs("\"/>\n", out);
}

void mc_svg_chart(FILE *out, const struct mc_chart *c)
{
    int w = c->width ? c->width : 340, h = c->height ? c->height : 170;
    int left = 64, right = c->y2 ? 56 : 12, top = 24, bottom = 30;
    int pw = w - left - right, ph = h - top - bottom;
    fprintf(out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" role=\"img\" class=\"chart\">\n<title>",
            w, h, w, h);
    mc_html_esc(out, c->title);
    fputs("</title>\n", out);
    fprintf(out, "<text x=\"6\" y=\"15\" font-size=\"12\" font-weight=\"600\">");
    mc_html_esc(out, c->title);
    fputs("</text>\n", out);
    if (c->n < 1 || !c->x || !c->y) {
        fprintf(out,
                "<text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"#777\" text-anchor=\"middle\">"
                "no samples</text></svg>\n",
                w / 2, h / 2);
        return;
    }
    double x0 = c->x[0], x1 = c->x[c->n - 1];
    if (c->y_b && c->n_b) {
        x0 = fmin(x0, c->x_b[0]);
        x1 = fmax(x1, c->x_b[c->n_b - 1]);
    }
    double y0, y1, ys;
    range(c->y, c->n, c->y_b, c->n_b, c->unit, &y0, &y1, &ys);
    char buf[48];
    /* Grid and left axis; ticks are counted, never an open-ended loop. */
    for (int k = 0; k <= MAX_TICKS && y0 + k * ys <= y1 + ys / 2; k++) {
        double v = y0 + k * ys;
        double py = top + ph - (v - y0) / (y1 - y0) * ph;
        fprintf(out, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", left,
                left + pw, py, py);
        label(buf, sizeof(buf), v, c->unit);
        fprintf(out,
                "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\" "
                "fill=\"#555\">%s</text>\n",
                left - 4, py + 3, buf);
    }
    /* Bottom axis: a handful of whole ticks. */
    if (!isfinite(x0) || !isfinite(x1) || x1 - x0 > 1e18) x0 = x1 = 0;
    double xs = nice_step(x1 - x0, 4, MC_UNIT_REAL), xt = ceil(x0 / xs) * xs;
    for (int k = 0; k <= MAX_TICKS && x1 > x0 && xt + k * xs <= x1 + 1e-9; k++) {
        double v = xt + k * xs;
        double px = left + (v - x0) / (x1 - x0) * pw;
        fprintf(out,
                "<text x=\"%.1f\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\" "
                "fill=\"#555\">%g%s</text>\n",
                px, top + ph + 13, v, c->x_label && !strcmp(c->x_label, "s") ? " s" : "");
    }
    if (c->x_label && strcmp(c->x_label, "s"))
        fprintf(out,
                "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\" "
                "fill=\"#555\">%s</text>\n",
                left + pw / 2, h - 3, c->x_label);
    fprintf(out,
            "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
            "stroke=\"#bbb\"/>\n",
            left, top, pw, ph);
    /* The second quantity on its own axis, dashed, drawn under the first. */
    if (c->y2) {
        double z0, z1, zs;
        range(c->y2, c->n, NULL, 0, MC_UNIT_COUNT, &z0, &z1, &zs);
        for (int k = 0; k <= MAX_TICKS && z0 + k * zs <= z1 + zs / 2; k++) {
            double v = z0 + k * zs;
            double py = top + ph - (v - z0) / (z1 - z0) * ph;
            label(buf, sizeof(buf), v, MC_UNIT_COUNT);
            fprintf(out, "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" fill=\"%s\">%s</text>\n",
                    left + pw + 4, py + 3, MC_HTML_LINE2, buf);
        }
        polyline(out, c->x, c->y2, c->n, x0, x1, z0, z1, left, top, pw, ph, MC_HTML_LINE2,
                 " stroke-dasharray=\"5 3\"");
        fprintf(out,
                "<text x=\"%d\" y=\"15\" font-size=\"10\" text-anchor=\"end\" fill=\"%s\">"
                "- - %s</text>\n",
                w - 4, MC_HTML_LINE2, c->y2_label ? c->y2_label : "");
    }
    if (c->y_b && c->n_b)
        polyline(out, c->x_b, c->y_b, c->n_b, x0, x1, y0, y1, left, top, pw, ph, MC_HTML_LINE_B,
                 "");
    polyline(out, c->x, c->y, c->n, x0, x1, y0, y1, left, top, pw, ph, MC_HTML_LINE, "");
    if (c->legend_a) {
        fprintf(out, "<text x=\"%d\" y=\"15\" font-size=\"10\" text-anchor=\"end\" fill=\"%s\">",
                w - 60, MC_HTML_LINE);
        mc_html_esc(out, c->legend_a);
        fprintf(out,
                "</text><text x=\"%d\" y=\"15\" font-size=\"10\" text-anchor=\"end\" "
                "fill=\"%s\">",
                w - 6, MC_HTML_LINE_B);
        mc_html_esc(out, c->legend_b ? c->legend_b : "");
        fputs("</text>\n", out);
    }
    fputs("</svg>\n", out);
}
