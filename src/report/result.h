/* result.h - rendering the result of a run (analysis/result.h builds it):
 * writing and reading the document and every report format, all from the
 * document alone, so `memcreep report` works on any saved run. */
#ifndef MC_RESULT_H
#define MC_RESULT_H

#include <jansson.h>
#include <stdio.h>

#include "analysis/result.h"

/* Writes the document as JSON to f. Returns 0 or -errno. */
int mc_result_write(json_t *doc, FILE *f);
/* Reads and validates a saved document. Returns a new reference, or NULL
 * with a one-line reason in err. */
json_t *mc_result_load(const char *path, char *err, size_t errlen);
/* The same from memory (name is used in messages). */
json_t *mc_result_parse(const char *buf, size_t len, const char *name, char *err, size_t errlen);
/* The overall verdict of a document: "CREEP", "PLATEAU", "STEADY" or
 * "UNKNOWN". */
const char *mc_result_verdict(json_t *doc);

/* Renders the terminal report (text.c). colour: ANSI colours. top: stacks
 * shown per process (0 = all kept). */
void mc_report_text(json_t *doc, FILE *out, int colour, int top);
/* Writes the stacks that grew as folded stacks (folded.c), the input of
 * flamegraph.pl and speedscope. Returns the number of lines written. */
int mc_report_folded(json_t *doc, FILE *out);
/* Writes the stacks' growth and live memory as a gzip-compressed pprof
 * profile (pprof.c): sample types grown_bytes, grown_objects, live_bytes,
 * live_objects. Returns 0, -ENOMEM or -EIO. */
int mc_report_pprof(json_t *doc, FILE *out);
/* Renders one run, or the h1 and h2 runs of one target (n = 2), as one
 * self-contained HTML page with SVG charts and a flame graph (html.c). top:
 * stacks listed per process (0 = all kept). Returns 0 or -EIO. */
int mc_report_html(json_t **docs, int n, FILE *out, int top);
/* The metrics of a process as the reports list them: key in the document
 * and label (text.c). The first three are memory, always shown; the rest
 * only when mc_report_metric_shown says they moved or creep. */
/* Metric rows in reports (text.c, from analysis/metric_map.h: the lines
 * with row 1). */
#define MC_METRIC_ROW_COUNT(key, field, label, judged, preload, row) +row
enum { MC_REPORT_METRICS = 0 MC_METRIC_MAP(MC_METRIC_ROW_COUNT) };
#undef MC_METRIC_ROW_COUNT
extern const char *const mc_report_metrics[MC_REPORT_METRICS][2];
int mc_report_metric_shown(size_t i, json_t *metric);
/* A metric's start, end, per minute and per unit (empty without) as text:
 * bytes with units, counts as counts (per unit as per 1000 units, "/k"). */
void mc_report_metric_cells(json_t *metric, int per_unit, char cells[4][32]);
/* "site  file:line  (module)" of a frame of the document (text.c). */
void mc_report_frame_text(json_t *frame, char *buf, size_t len);
/* How a process ended, in words ("exited with status 0"; text.c). */
void mc_report_end_text(json_t *end, char *buf, size_t len);
/* What a run of memcreep attach saw from when, in words (text.c). Returns
 * 0 with buf empty when the run was not an attach. */
int mc_report_attach_text(json_t *doc, char *buf, size_t len);
/* A frame's name in flame graphs: its function, or [module] when it has no
 * symbol (folded.c). */
void mc_report_frame_name(json_t *frame, char *buf, size_t len);
/* Calls fn for every stack of every process that grew between the first
 * and the last sample (folded.c), with the process named "exe (pid N)",
 * the stack's frames (innermost first) and the bytes grown. Returns how
 * many. growth.folded and the flame graph are both made from this. */
int mc_report_growth(json_t *doc,
                     void (*fn)(void *ctx, const char *proc, json_t *frames, long long grew),
                     void *ctx);
/* Prints two runs side by side (diff.c): verdicts, the target's rates,
 * processes matched by program, stacks matched by place in the code. na
 * and nb name the runs in the heading. */
void mc_report_diff(json_t *a, json_t *b, const char *na, const char *nb, FILE *out);
/* The same as one HTML page with the runs' charts drawn over each other
 * (html_diff.c). Returns 0 or -EIO. */
int mc_report_diff_html(json_t *a, json_t *b, const char *na, const char *nb, FILE *out);
/* Prints runs of the same target side by side (h1 against h2): throughput,
 * live heap per request and the top creeping site of each. */
void mc_report_compare(json_t **docs, int n, FILE *out, int colour);

/* The terminal width every text renderer keeps to (wrap.c). */
#define MC_TEXT_WIDTH 100
/* Folds buf's lines wider than width at a space (wrap.c). */
void mc_text_wrap(const char *buf, size_t len, FILE *out, int width);
/* A renderer writes into tb->f between begin and end; end folds what was
 * written to MC_TEXT_WIDTH onto out and frees it. begin returns 0, or -1
 * when memory is short (tb->f is then NULL and end does nothing). */
struct mc_text_buf {
    FILE *f;
    char *buf;
    size_t len;
};
int mc_text_begin(struct mc_text_buf *tb);
void mc_text_end(struct mc_text_buf *tb, FILE *out);

#endif
