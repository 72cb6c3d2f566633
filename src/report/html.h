/* html.h - what the HTML renderers share (internal to src/report): escaping,
 * the page frame with its inline style, SVG line charts and the flame
 * graph. Everything is written inline so that a page is one file that
 * needs no network and no script to show its charts. */
#ifndef MC_REPORT_HTML_H
#define MC_REPORT_HTML_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* Colours the charts draw with; tests look for them on a screenshot. */
#define MC_HTML_LINE   "#1f6fb4" /* the metric */
#define MC_HTML_LINE2  "#e8710a" /* requests / work units, right axis */
#define MC_HTML_LINE_B "#7b3fb2" /* the second run of a diff */

/* Writes s with &, <, >, " and ' escaped. */
void mc_html_esc(FILE *out, const char *s);
/* The document's head (title escaped) and inline style, up to <body>. */
void mc_html_begin(FILE *out, const char *title);
/* A verdict as a coloured label (the class only from the known verdicts:
 * the text comes from the document). */
void mc_html_badge(FILE *out, const char *verdict);
/* The run's command line, its words escaped and joined by spaces. */
void mc_html_command(FILE *out, json_t *doc);
/* Closes the document. */
void mc_html_end(FILE *out);

/* The numbers of a JSON array as doubles in a new array (free it); *n is
 * its length. NULL (and *n = 0) when it is not an array or is empty. */
double *mc_html_doubles(json_t *arr, size_t *n);

enum mc_unit { MC_UNIT_BYTES, MC_UNIT_COUNT, MC_UNIT_REAL };

/* One chart: y (and y_b, a second run in another colour) against x, with
 * y2 on a right-hand axis when given. Arrays of n points; NULL y_b / y2
 * are left out. */
struct mc_chart {
    const char *title;
    const double *x, *y, *y_b, *y2;
    size_t n, n_b; /* y_b may have its own x (x_b) and length */
    const double *x_b;
    enum mc_unit unit;
    const char *x_label;  /* "s", "round", "snapshot" */
    const char *y2_label; /* "requests", "work units" */
    const char *legend_a, *legend_b;
    int width, height;
};
/* Writes the chart as an inline <svg>. */
void mc_svg_chart(FILE *out, const struct mc_chart *c);

/* The flame graph of what grew (flame.c): every stack of every process
 * with positive growth between the first and the last sample, the
 * outermost caller at the bottom, widths in proportion to bytes. Writes
 * nothing and returns 0 when nothing grew, else 1. */
int mc_svg_flame(FILE *out, json_t *doc, int width);

#endif
