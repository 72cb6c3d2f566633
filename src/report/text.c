/* text.c - the terminal report, rendered from the result document. Fits in
 * 100 columns (wrap.c folds what would not); colours only when asked (the
 * caller checks for a TTY). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "analysis/findings.h"
#include "analysis/metric_map.h"
#include "common/util.h"
#include "analysis/jget.h"
#include "report/result.h"

#define CALLERS_SHOWN 3

static const char *colour_of(const char *v, int colour)
{
    if (!colour) return "";
    if (!strcmp(v, "CREEP")) return "\033[1;31m";
    if (!strcmp(v, "PLATEAU")) return "\033[33m";
    if (!strcmp(v, "STEADY")) return "\033[32m";
    return "\033[2m";
}

void mc_report_end_text(json_t *end, char *buf, size_t len)
{
    const char *how = mc_jstr(end, "how");
    if (!strcmp(how, "exited") && json_object_get(end, "status"))
        snprintf(buf, len, "exited with status %d",
                 (int)json_integer_value(json_object_get(end, "status")));
    else if (!strcmp(how, "signaled"))
        snprintf(buf, len, "killed by signal %d (%s)", (int)mc_jnum(end, "signal"),
                 strsignal((int)mc_jnum(end, "signal")));
    else if (!strcmp(how, "exec"))
        snprintf(buf, len, "replaced by exec");
    else if (!strcmp(how, "vanished"))
        snprintf(buf, len, "ended (not our child: how is unknown)");
    else if (!strcmp(how, "stopped"))
        snprintf(buf, len, "still running when watching stopped");
    else
        snprintf(buf, len, "%s", how);
}

/* The metric rows: the series of analysis/metric_map.h marked row. */
const char *const mc_report_metrics[MC_REPORT_METRICS][2] = {
#define MC_METRIC_ROW(key, field, label, judged, preload, row) {#key, label},
#define MC_METRIC_ROW_IF(key, field, label, judged, preload, row)                                  \
    MC_METRIC_ROW_##row(key, field, label, judged, preload, row)
#define MC_METRIC_ROW_1 MC_METRIC_ROW
#define MC_METRIC_ROW_0(...)
    MC_METRIC_MAP(MC_METRIC_ROW_IF)
#undef MC_METRIC_ROW_0
#undef MC_METRIC_ROW_1
#undef MC_METRIC_ROW_IF
#undef MC_METRIC_ROW
};

int mc_report_metric_shown(size_t i, json_t *m)
{
    if (!m) return 0;
    if (i < 3) return 1;
    return (mc_jnum(m, "start") != mc_jnum(m, "end") || strcmp(mc_jstr(m, "verdict"), "STEADY")) &&
           (mc_jnum(m, "start") || mc_jnum(m, "end"));
}

void mc_report_metric_cells(json_t *m, int per_unit, char cells[4][32])
{
    cells[3][0] = 0;
    if (!strcmp(mc_jstr(m, "unit"), "count")) {
        snprintf(cells[0], 32, "%.0f", mc_jnum(m, "start"));
        snprintf(cells[1], 32, "%.0f", mc_jnum(m, "end"));
        mc_fmt_count(cells[2], 32, mc_jnum(m, "per_min"), 1);
        if (per_unit && json_object_get(m, "per_unit")) {
            mc_fmt_count(cells[3], 32 - 3, mc_jnum(m, "per_unit") * 1000, 1);
            strcat(cells[3], "/k");
        }
    } else {
        mc_fmt_bytes(cells[0], 32, mc_jnum(m, "start"), 0);
        mc_fmt_bytes(cells[1], 32, mc_jnum(m, "end"), 0);
        mc_fmt_bytes(cells[2], 32, mc_jnum(m, "per_min"), 1);
        if (per_unit && json_object_get(m, "per_unit"))
            mc_fmt_bytes(cells[3], 32, mc_jnum(m, "per_unit"), 1);
    }
}

static void metric_row(FILE *out, const char *label, json_t *m, int per_unit, int colour)
{
    char c[4][32];
    if (!m) return;
    mc_report_metric_cells(m, per_unit, c);
    const char *v = mc_jstr(m, "verdict");
    fprintf(out, "  %-16s %11s %11s %12s %11s  %s%s%s\n", label, c[0], c[1], c[2], c[3],
            colour_of(v, colour), v, colour ? "\033[0m" : "");
}

/* A Python file as a reader knows it: an installed package's or the
 * standard library's path from the package on (httpx/_models.py), the
 * program's own as given. */
static const char *python_path(const char *file)
{
    const char *p;
    if ((p = strstr(file, "-packages/"))) return p + 10;
    if (!strncmp(file, "/usr/lib/python3", 16) && (p = strchr(file + 16, '/'))) return p + 1;
    return file;
}

void mc_report_frame_text(json_t *f, char *buf, size_t len)
{
    const char *file = mc_jstr(f, "file");
    if (json_is_true(json_object_get(f, "python"))) {
        snprintf(buf, len, "%s:%d in %s", python_path(file),
                 (int)json_integer_value(json_object_get(f, "line")), mc_jstr(f, "function"));
        return;
    }
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    if (*file)
        snprintf(buf, len, "%s  %s:%d  (%s%s)", mc_jstr(f, "function"), base,
                 (int)json_integer_value(json_object_get(f, "line")), mc_jstr(f, "module"),
                 json_is_true(json_object_get(f, "inlined")) ? ", inlined" : "");
    else
        snprintf(buf, len, "%s  (%s+%s)", mc_jstr(f, "function"), mc_jstr(f, "module"),
                 mc_jstr(f, "offset"));
}

/* A native frame of the Python interpreter itself (python3.11, or
 * libpython3.11.so). */
static int interpreter_frame(json_t *f)
{
    const char *m = f ? mc_jstr(f, "module") : "";
    return !json_is_true(json_object_get(f, "python")) &&
           (!strncmp(m, "python3", 7) || !strncmp(m, "libpython3", 10));
}

/* How old what a stack holds is, when judged (analysis/age.c): "97% of
 * what it holds is older than 2 rounds; of what it made before then, 100%
 * is still alive". Said for what grows, and for what the age turned. */
static void age_line(FILE *out, json_t *age, const char *verdict)
{
    if (!json_is_true(json_object_get(age, "judged"))) return;
    const char *by_trend = mc_jstr(age, "trend_verdict");
    int turned = strcmp(by_trend, verdict) != 0;
    if (!turned && strcmp(verdict, "CREEP") && strcmp(verdict, "PLATEAU")) return;
    char older[48];
    snprintf(older, sizeof(older), "%.1f s", mc_jnum(age, "older_s"));
    fprintf(out,
            "      age: %.0f%% of what it holds is older than %s; of what it made before then, "
            "%.0f%% is still alive",
            100 * mc_jnum(age, "old_share"), older, 100 * mc_jnum(age, "survival"));
    if (turned)
        fprintf(out, " (its trend alone says %s: old blocks are replaced, not kept)", by_trend);
    fputc('\n', out);
}

static void stack_rows(FILE *out, json_t *stacks, int per_unit, int colour, int top)
{
    size_t i;
    json_t *s;
    fprintf(out, "  %11s %11s %10s %10s  %-7s  %s\n", "growth/min", "objects/min",
            per_unit ? "per unit" : "", "net", "verdict", "(then the site and its callers)");
    json_array_foreach (stacks, i, s) {
        if (top > 0 && (int)i >= top) {
            fprintf(out, "  ... %zu more stacks in the JSON result\n", json_array_size(stacks) - i);
            break;
        }
        char g[32], o[32], u[32] = "", n[32], site[600] = "[stack not recorded: table full]";
        mc_fmt_bytes(g, sizeof(g), mc_jnum(s, "bytes_per_min"), 1);
        mc_fmt_count(o, sizeof(o), mc_jnum(s, "objects_per_min"), 1);
        if (per_unit) mc_fmt_bytes(u, sizeof(u), mc_jnum(s, "bytes_per_unit"), 1);
        mc_fmt_bytes(n, sizeof(n), mc_jnum(s, "net_growth"), 1);
        json_t *frames = json_object_get(s, "frames");
        int at = (int)json_integer_value(json_object_get(s, "site"));
        if (at >= 0 && (size_t)at < json_array_size(frames))
            mc_report_frame_text(json_array_get(frames, (size_t)at), site, sizeof(site));
        const char *v = mc_jstr(s, "verdict");
        fprintf(out, "  %11s %11s %10s %10s  %s%s%s\n      at %s\n", g, o, u, n,
                colour_of(v, colour), v, colour ? "\033[0m" : "", site);
        /* Callers; the interpreter's own frames in a row (python3.11,
         * libpython3.11: its C internals between two frames that mean
         * something) fold into one line. */
        size_t next = (size_t)at + 1;
        for (int k = 1; at >= 0 && k <= CALLERS_SHOWN; k++) {
            json_t *f = json_array_get(frames, next);
            if (!f) break;
            size_t run = 0;
            while (interpreter_frame(json_array_get(frames, next + run)))
                run++;
            if (run >= 2) {
                const char *m = mc_jstr(f, "module"), *so = strstr(m, ".so");
                fprintf(out, "      <- [%.*s: %zu frames]\n", so ? (int)(so - m) : (int)strlen(m),
                        m, run);
                next += run;
                continue;
            }
            mc_report_frame_text(f, site, sizeof(site));
            fprintf(out, "      <- %s\n", site);
            next++;
        }
        json_t *in = json_object_get(s, "allocated_in"), *nat = json_object_get(s, "native_site");
        if (in) {
            mc_report_frame_text(json_array_get(frames, (size_t)json_integer_value(in)), site,
                                 sizeof(site));
            fprintf(out, "      allocated in %s", site);
        }
        if (nat)
            fprintf(out, "%s(native: %s)", in ? "  " : "      ",
                    mc_jstr(json_array_get(frames, (size_t)json_integer_value(nat)), "function"));
        if (in || nat) fputc('\n', out);
        age_line(out, json_object_get(s, "age"), v);
    }
}

/* The load the run drove: summary, rounds, throughput across rounds. */
static void load_section(json_t *doc, FILE *out, int colour)
{
    json_t *load = json_object_get(doc, "load");
    if (!load) return;
    json_t *sum = json_object_get(load, "summary");
    json_t *lat = json_object_get(sum, "latency_us");
    fprintf(out, "\nload: %s %s, %lld connections%s\n", mc_jstr(load, "proto"),
            mc_jstr(load, "url"),
            (long long)json_integer_value(json_object_get(load, "connections")),
            json_is_true(json_object_get(load, "new_conn")) ? ", new per request" : "");
    json_t *errs = json_object_get(sum, "errors");
    double nerr = 0;
    const char *k;
    json_t *v;
    json_object_foreach (errs, k, v)
        nerr += json_number_value(v);
    fprintf(out, "  %.0f requests, %.0f req/s, %.0f errors, latency p50 %.0f us p99 %.0f us\n",
            mc_jnum(sum, "requests"), mc_jnum(sum, "requests_per_s"), nerr, mc_jnum(lat, "p50"),
            mc_jnum(lat, "p99"));
    if (*mc_jstr(sum, "warning")) fprintf(out, "  warning: %s\n", mc_jstr(sum, "warning"));
    /* A mix: the rates per request above are per request of any kind; a
     * kind's share turns them into its own. */
    json_t *mix = json_object_get(sum, "mix");
    if (json_array_size(mix)) {
        size_t i;
        json_t *m;
        fprintf(out, "  mix (rates are per request of any kind):");
        json_array_foreach (mix, i, m)
            fprintf(out, "%s %s %.1f%% (%.0f)", i ? "," : "", mc_jstr(m, "name"),
                    100 * mc_jnum(m, "share"), mc_jnum(m, "requests"));
        fputc('\n', out);
    }
    json_t *rounds = json_object_get(load, "rounds");
    if (json_array_size(rounds)) {
        fprintf(out, "  %6s %10s %12s %12s %10s %12s\n", "round", "requests", "d live heap",
                "d RSS", "req/s", "live heap");
        size_t i;
        json_t *r;
        json_array_foreach (rounds, i, r) {
            char h[32], dh[32], dm[32];
            mc_fmt_bytes(h, sizeof(h), mc_jnum(r, "live_heap"), 0);
            mc_fmt_bytes(dh, sizeof(dh), mc_jnum(r, "delta_live_heap"), 1);
            mc_fmt_bytes(dm, sizeof(dm), mc_jnum(r, "delta_rss"), 1);
            fprintf(out, "  %6lld %10.0f %12s %12s %10.0f %12s\n",
                    (long long)json_integer_value(json_object_get(r, "round")),
                    mc_jnum(r, "requests"), dh, dm, mc_jnum(r, "requests_per_s"), h);
        }
    }
    json_t *tp = json_object_get(load, "throughput");
    const char *tv = mc_jstr(tp, "verdict");
    if (!strcmp(tv, "FALLING"))
        fprintf(out, "  %sthroughput FALLING%s: %.0f -> %.0f req/s across rounds\n",
                colour ? "\033[1;31m" : "", colour ? "\033[0m" : "", mc_jnum(tp, "first"),
                mc_jnum(tp, "last"));
}

/* The Python section of a process: object types that grow, then cycle
 * garbage by type (at most PY_ROWS of each). */
#define PY_ROWS 8

static void python_rows(FILE *out, json_t *py, int per_unit, int colour)
{
    fprintf(out, "\n  python: %.0f snapshots (%.0f skipped, %.0f late)", mc_jnum(py, "snapshots"),
            mc_jnum(py, "skipped"), mc_jnum(py, "late"));
    fprintf(out, ", the last took %.1f ms%s\n", mc_jnum(py, "snapshot_ms"),
            json_is_true(json_object_get(py, "finalized")) ? ", interpreter finalized" : "");
    if (*mc_jstr(py, "types_unknown")) fprintf(out, "  (%s)\n", mc_jstr(py, "types_unknown"));
    json_t *e;
    size_t i;
    int shown = 0;
    json_array_foreach (json_object_get(py, "types"), i, e) {
        if (shown >= PY_ROWS || (mc_jnum(e, "end") == mc_jnum(e, "start") && i > 2)) break;
        if (!shown++)
            fprintf(out, "  %-44s %9s %9s %10s %10s  %s\n", "object type", "start", "end",
                    "per min", per_unit ? "per unit" : "", "verdict");
        const char *v = mc_jstr(e, "verdict");
        char pu[32] = "";
        if (per_unit) snprintf(pu, sizeof(pu), "%+.2f", mc_jnum(e, "per_unit"));
        fprintf(out, "  %-44.44s %9.0f %9.0f %+10.1f %10s  %s%s%s\n", mc_jstr(e, "type"),
                mc_jnum(e, "start"), mc_jnum(e, "end"), mc_jnum(e, "per_min"), pu,
                colour_of(v, colour), v, colour ? "\033[0m" : "");
        age_line(out, json_object_get(e, "age"), v);
    }
    shown = 0;
    json_array_foreach (json_object_get(py, "lines"), i, e) {
        if (shown >= PY_ROWS) break;
        if (!shown++)
            fprintf(out, "  %-44s %9s %10s %10s\n", "python line (growth while traced)", "objects",
                    "per min", per_unit ? "per unit" : "");
        char pm[32], pu[32] = "";
        mc_fmt_bytes(pm, sizeof(pm), mc_jnum(e, "bytes_per_min"), 1);
        if (per_unit && json_object_get(e, "bytes_per_unit"))
            mc_fmt_bytes(pu, sizeof(pu), mc_jnum(e, "bytes_per_unit"), 1);
        const char *where = mc_jstr(e, "line");
        size_t wl = strlen(where);
        fprintf(out, "  %-44s %9.0f %10s %10s\n", wl > 44 ? where + wl - 44 : where,
                mc_jnum(e, "objects"), pm, pu);
    }
    shown = 0;
    json_array_foreach (json_object_get(py, "cycle_garbage"), i, e) {
        if (shown >= PY_ROWS) break;
        if (!shown++)
            fprintf(out, "  %-44s %9s %10s %10s\n", "cycle garbage (freed only by the collector)",
                    "objects", "per min", per_unit ? "per unit" : "");
        char pu[32] = "";
        if (per_unit) snprintf(pu, sizeof(pu), "%+.2f", mc_jnum(e, "per_unit"));
        fprintf(out, "  %-44.44s %9.0f %+10.1f %10s\n", mc_jstr(e, "type"), mc_jnum(e, "total"),
                mc_jnum(e, "per_min"), pu);
    }
}

/* The creeping stack with the largest per-unit growth in a document. */
static json_t *top_creep(json_t *doc, json_t **proc_out)
{
    json_t *best = NULL, *p, *s;
    size_t i, k;
    json_array_foreach (json_object_get(doc, "processes"), i, p) {
        json_array_foreach (json_object_get(p, "stacks"), k, s) {
            if (strcmp(mc_jstr(s, "verdict"), "CREEP")) continue;
            if (!best || mc_jnum(s, "bytes_per_unit") > mc_jnum(best, "bytes_per_unit")) {
                best = s;
                *proc_out = p;
            }
        }
    }
    return best;
}

static void compare_body(json_t **docs, int n, FILE *out, int colour)
{
    fprintf(out, "\nside by side (same target, a fresh start each)\n");
    fprintf(out, "  %-5s %9s %14s  %-7s  %s\n", "proto", "req/s", "heap/request", "verdict",
            "top creeping site (bytes/request)");
    for (int i = 0; i < n; i++) {
        json_t *load = json_object_get(docs[i], "load");
        json_t *tm = json_object_get(json_object_get(docs[i], "tree"), "metrics");
        json_t *heap = json_object_get(tm, "live_heap");
        char per[32] = "-", site[400] = "-";
        if (json_object_get(heap, "per_unit"))
            mc_fmt_bytes(per, sizeof(per), mc_jnum(heap, "per_unit"), 1);
        json_t *proc = NULL, *s = top_creep(docs[i], &proc);
        if (s) {
            json_t *frames = json_object_get(s, "frames");
            json_t *f =
                json_array_get(frames, (size_t)json_integer_value(json_object_get(s, "site")));
            char b[32];
            mc_fmt_bytes(b, sizeof(b), mc_jnum(s, "bytes_per_unit"), 1);
            const char *file = mc_jstr(f, "file"), *base = strrchr(file, '/');
            snprintf(site, sizeof(site), "%s  %s:%d  (%s)", mc_jstr(f, "function"),
                     base ? base + 1 : file, (int)json_integer_value(json_object_get(f, "line")),
                     b);
        }
        const char *v = mc_result_verdict(docs[i]);
        fprintf(out, "  %-5s %9.0f %14s  %s%-7s%s  %s\n", mc_jstr(load, "proto"),
                mc_jnum(json_object_get(load, "summary"), "requests_per_s"), per,
                colour_of(v, colour), v, colour ? "\033[0m" : "", site);
    }
}

/* With many processes (a test suite, a build), those that grew in nothing
 * (not the target, no creeping stack, every metric STEADY or UNKNOWN, no
 * finding) are counted by program instead of shown one by one. */
#define QUIET_FOLD_FROM 8

static int quiet_proc(json_t *doc, json_t *p)
{
    if (json_is_true(json_object_get(p, "root")) ||
        json_integer_value(json_object_get(p, "creeping_stacks")) > 0)
        return 0;
    const char *k;
    json_t *m;
    json_object_foreach (json_object_get(p, "metrics"), k, m) {
        const char *v = mc_jstr(m, "verdict");
        if (strcmp(v, "STEADY") && strcmp(v, "UNKNOWN") && *v) return 0;
    }
    size_t i;
    json_t *f;
    json_int_t pid = json_integer_value(json_object_get(p, "pid"));
    json_array_foreach (json_object_get(json_object_get(doc, "summary"), "findings"), i, f)
        if (json_integer_value(json_object_get(f, "pid")) == pid) return 0;
    return 1;
}

/* "N processes that did not grow: prog xK, ..." for the folded ones. */
static void quiet_line(json_t *doc, json_t *procs, FILE *out)
{
    enum { MAXP = 8 };
    const char *name[MAXP];
    int count[MAXP], kinds = 0, total = 0, other = 0;
    size_t i;
    json_t *p;
    json_array_foreach (procs, i, p) {
        if (!quiet_proc(doc, p)) continue;
        total++;
        const char *exe = *mc_jstr(p, "exe") ? mc_jstr(p, "exe") : "(unnamed)";
        int k = 0;
        while (k < kinds && strcmp(name[k], exe))
            k++;
        if (k == kinds && kinds < MAXP) {
            name[kinds] = exe;
            count[kinds++] = 0;
        }
        if (k < kinds)
            count[k]++;
        else
            other++;
    }
    if (!total) return;
    fprintf(out, "\n%d processes that did not grow, not shown one by one:", total);
    for (int k = 0; k < kinds; k++)
        fprintf(out, "%s %s x%d", k ? "," : "", name[k], count[k]);
    if (other) fprintf(out, ", %d others", other);
    fprintf(out, "\n");
}

int mc_report_attach_text(json_t *doc, char *buf, size_t len)
{
    json_t *a = json_object_get(doc, "attach");
    buf[0] = 0;
    if (!json_is_object(a)) return 0;
    long long pid = (long long)json_integer_value(json_object_get(a, "pid"));
    if (json_is_true(json_object_get(a, "watch_only")))
        snprintf(buf, len,
                 "attached to PID %lld from outside only (--watch-only): memory, "
                 "descriptors, sockets and threads as /proc shows them",
                 pid);
    else if (json_is_true(json_object_get(a, "inside")))
        snprintf(buf, len,
                 "attached to PID %lld, its hooks in from %.1f s (one thread paused %.1f ms "
                 "for it): what was allocated before is not tracked, and its frees are ignored",
                 pid, mc_jnum(a, "attached_s"), mc_jnum(a, "paused_ms"));
    else
        snprintf(buf, len,
                 "attached to PID %lld from outside only: its library could not be "
                 "loaded (said above)",
                 pid);
    return 1;
}

static void text_body(json_t *doc, FILE *out, int colour, int top)
{
    json_t *run = json_object_get(doc, "run");
    json_t *procs = json_object_get(doc, "processes");
    json_t *cmd = json_object_get(run, "command");
    char cmdline[256] = "";
    size_t i;
    json_t *a;
    json_array_foreach (cmd, i, a) {
        size_t l = strlen(cmdline);
        snprintf(cmdline + l, sizeof(cmdline) - l, "%s%s", i ? " " : "", json_string_value(a));
    }
    fprintf(out, "memcreep: %s\n", cmdline);
    fprintf(out, "  ran %.1f s, %lld samples every %.2f s, stopped by %s\n",
            mc_jnum(run, "duration_s"),
            (long long)json_integer_value(json_object_get(run, "samples")),
            mc_jnum(run, "interval_s"), mc_jstr(run, "stopped_by"));
    char att[256];
    if (mc_report_attach_text(doc, att, sizeof(att)))
        fprintf(out, "  %s\n", att);
    else if (json_is_false(json_object_get(run, "preload")))
        fprintf(out, "  the preload could not load (statically linked?): RSS only\n");

    json_t *p;
    int fold = json_array_size(procs) > QUIET_FOLD_FROM;
    json_array_foreach (procs, i, p) {
        char end[128];
        if (fold && quiet_proc(doc, p)) continue;
        mc_report_end_text(json_object_get(p, "end"), end, sizeof(end));
        int per_unit = json_is_true(json_object_get(p, "per_unit"));
        fprintf(out, "\nprocess %lld  %s  %s%s\n",
                (long long)json_integer_value(json_object_get(p, "pid")), mc_jstr(p, "exe"), end,
                json_is_true(json_object_get(p, "root")) ? "  [target]" : "");
        if (per_unit && json_object_get(doc, "load"))
            fprintf(out, "  per unit = per request of the load\n");
        else if (per_unit)
            fprintf(out, "  %lld work units\n",
                    (long long)json_integer_value(json_object_get(p, "work_units")));
        json_t *m = json_object_get(p, "metrics");
        fprintf(out, "  %-16s %11s %11s %12s %11s  %s\n", "", "start", "end", "per min",
                per_unit ? "per unit" : "", "verdict");
        /* Descriptors, sockets and threads only when they moved or creep. */
        for (size_t k = 0; k < MC_REPORT_METRICS; k++) {
            json_t *x = json_object_get(m, mc_report_metrics[k][0]);
            if (mc_report_metric_shown(k, x))
                metric_row(out, mc_report_metrics[k][1], x, per_unit, colour);
        }
        if (mc_jnum(p, "memcreep_mapping_bytes") > 0) {
            char b[32], t[32];
            mc_fmt_bytes(b, sizeof(b), mc_jnum(p, "memcreep_mapping_bytes"), 0);
            fprintf(out,
                    "  of its RSS, at least %s is memcreep's mapping (its file in the run "
                    "directory)",
                    b);
            if (mc_jnum(p, "memcreep_private_bytes") > 0) {
                mc_fmt_bytes(t, sizeof(t), mc_jnum(p, "memcreep_private_bytes"), 0);
                fprintf(out, ",\n  and %s more its pointer table (private memory)", t);
            }
            fputc('\n', out);
        }
        json_t *smp = json_object_get(p, "sampling");
        if (smp && mc_jnum(smp, "burst_calls") > 0) {
            char b[32];
            mc_fmt_bytes(b, sizeof(b), mc_jnum(smp, "bursts"), 0);
            fprintf(out,
                    "  sampled in allocation bursts: about %.0f allocations, one per %s "
                    "recorded (--burst-rate)\n",
                    mc_jnum(smp, "burst_calls"), b);
        }
        json_t *lost = json_object_get(p, "lost");
        if (lost && (mc_jnum(lost, "stacks") > 0 || mc_jnum(lost, "pointers") > 0))
            fprintf(out,
                    "  lost: %.0f events without a stack, %.0f blocks untracked (tables full)\n",
                    mc_jnum(lost, "stacks"), mc_jnum(lost, "pointers"));
        if (lost && json_is_true(json_object_get(lost, "mapping_damaged")))
            fprintf(out, "  lost: the process cut its shared mapping short; what was cut read "
                         "as zeros\n");
        if (lost && mc_jnum(lost, "no_room") > 0)
            fprintf(out,
                    "  lost: %.0f records for want of room in the run directory (--run-dir, "
                    "docs/run.md)\n",
                    mc_jnum(lost, "no_room"));
        json_t *stacks = json_object_get(p, "stacks");
        if (json_array_size(stacks)) {
            fprintf(out, "\n");
            stack_rows(out, stacks, per_unit, colour, top);
        }
        json_t *py = json_object_get(p, "python");
        if (py) python_rows(out, py, per_unit, colour);
    }
    if (fold) quiet_line(doc, procs, out);
    load_section(doc, out, colour);
    if (json_array_size(procs) > 1) {
        json_t *tm = json_object_get(json_object_get(doc, "tree"), "metrics");
        fprintf(out, "\nwhole tree (%zu processes)\n", json_array_size(procs));
        fprintf(out, "  %-16s %11s %11s %12s %11s  %s\n", "", "start", "end", "per min", "",
                "verdict");
        metric_row(out, "RSS", json_object_get(tm, "rss"), 0, colour);
        metric_row(out, "live heap", json_object_get(tm, "live_heap"), 0, colour);
    }
    long long dropped = (long long)json_integer_value(json_object_get(run, "processes_dropped"));
    if (dropped > 0)
        fprintf(out, "  %lld short-lived processes that ended were not kept\n", dropped);
    json_t *sum = json_object_get(doc, "summary");
    json_t *f;
    json_array_foreach (json_object_get(sum, "findings"), i, f) {
        json_t *ev = json_object_get(f, "evidence");
        int kind = mc_result_finding_kind(f);
        if (kind == MC_F_ALLOCATOR_RETENTION) {
            char fr[32], hp[32], rb[32], rc[32];
            mc_fmt_bytes(fr, sizeof(fr), mc_jnum(ev, "allocator_free"), 0);
            mc_fmt_bytes(hp, sizeof(hp), mc_jnum(ev, "live_heap"), 0);
            mc_fmt_bytes(rb, sizeof(rb), mc_jnum(ev, "rss_before"), 0);
            mc_fmt_bytes(rc, sizeof(rc), mc_jnum(ev, "recovered"), 0);
            fprintf(out,
                    "\n%sALLOCATOR RETENTION%s in process %lld: RSS %s, live heap %s, "
                    "glibc keeps %s free; ",
                    colour ? "\033[33m" : "", colour ? "\033[0m" : "",
                    (long long)json_integer_value(json_object_get(f, "pid")), rb, hp, fr);
            if (!json_is_true(json_object_get(ev, "served"))) {
                fprintf(out, "malloc_trim(0) was asked but the target did not allocate to run it");
                continue;
            }
            char fa[32];
            mc_fmt_bytes(fa, sizeof(fa), mc_jnum(ev, "allocator_free_after"), 0);
            fprintf(out, "malloc_trim(0) gave back %s, %s stayed free in the heap (%s)", rc, fa,
                    json_is_true(json_object_get(ev, "at_rest"))
                        ? "measured at rest"
                        : "measured while the target was busy");
            /* What keeps free() from shrinking the heap by itself. */
            json_t *top = json_array_get(json_object_get(ev, "heap_top"), 0);
            if (top) {
                char sz[32], site[600];
                mc_fmt_bytes(sz, sizeof(sz), mc_jnum(top, "bytes"), 0);
                json_t *fr =
                    json_array_get(json_object_get(top, "frames"),
                                   (size_t)json_integer_value(json_object_get(top, "site")));
                if (fr)
                    mc_report_frame_text(fr, site, sizeof(site));
                else
                    snprintf(site, sizeof(site), "an unknown stack");
                fprintf(out, ";\n    the top of the heap is held by %s from %s", sz, site);
            }
            continue;
        }
        if (kind == MC_F_PYTHON_CREEP) {
            char b[32], site[600];
            json_t *kt = json_object_get(f, "kept"), *e, *x;
            size_t k, j;
            fprintf(out, "\n%sPYTHON CREEP%s in process %lld", colour ? "\033[1;31m" : "",
                    colour ? "\033[0m" : "",
                    (long long)json_integer_value(json_object_get(f, "pid")));
            if (kt && json_object_get(kt, "per_unit"))
                fprintf(out, ": %+.2f %s per unit", mc_jnum(kt, "per_unit"), mc_jstr(kt, "type"));
            else if (kt)
                fprintf(out, ": %+.1f %s per minute", mc_jnum(kt, "per_min"), mc_jstr(kt, "type"));
            if (kt) fprintf(out, ", held by %s", mc_jstr(kt, "held_by"));
            json_array_foreach (json_object_get(f, "sites"), k, e) {
                if (k == 3) break;
                int unit = json_object_get(e, "bytes_per_unit") != NULL;
                mc_fmt_bytes(b, sizeof(b), mc_jnum(e, unit ? "bytes_per_unit" : "bytes_per_min"),
                             1);
                mc_report_frame_text(json_object_get(e, "site"), site, sizeof(site));
                fprintf(out, "\n  %s per %s at %s", b, unit ? "unit" : "minute", site);
                json_array_foreach (json_object_get(e, "callers"), j, x) {
                    mc_report_frame_text(x, site, sizeof(site));
                    fprintf(out, "  <- %s", site);
                }
                json_array_foreach (json_object_get(e, "allocated_in"), j, x) {
                    mc_fmt_bytes(b, sizeof(b),
                                 mc_jnum(x, unit ? "bytes_per_unit" : "bytes_per_min"), 1);
                    json_t *fr = json_object_get(x, "frame");
                    if (fr)
                        mc_report_frame_text(fr, site, sizeof(site));
                    else
                        snprintf(site, sizeof(site), "this line");
                    fprintf(out, "\n    %s allocated in %s", b, site);
                    if (json_object_get(x, "native"))
                        fprintf(out, "  (native: %s)", mc_jstr(x, "native"));
                }
            }
            continue;
        }
        int objs = kind == MC_F_PYTHON_OBJECTS_CREEP;
        if (objs || kind == MC_F_CYCLE_GARBAGE) {
            fprintf(out, "\n%s%s%s in process %lld", objs && colour ? "\033[1;31m" : "",
                    mc_jstr(f, "kind"), colour && objs ? "\033[0m" : "",
                    (long long)json_integer_value(json_object_get(f, "pid")));
            if (!objs)
                fprintf(out, ": %.0f objects freed only by the cycle collector",
                        mc_jnum(f, "total"));
            json_t *ty;
            size_t k;
            json_array_foreach (json_object_get(f, "types"), k, ty) {
                if (k == 3) break;
                fprintf(out, "\n  %s ", mc_jstr(ty, "type"));
                if (objs)
                    fprintf(out, "%.0f -> %.0f", mc_jnum(ty, "start"), mc_jnum(ty, "end"));
                else
                    fprintf(out, "%.0f", mc_jnum(ty, "total"));
                if (json_object_get(ty, "per_unit"))
                    fprintf(out, ", %+.2f per unit", mc_jnum(ty, "per_unit"));
                else
                    fprintf(out, ", %+.1f per minute", mc_jnum(ty, "per_min"));
                if (json_object_get(ty, "held_by"))
                    fprintf(out, ", held by %s", mc_jstr(ty, "held_by"));
            }
            json_array_foreach (json_object_get(f, "lines"), k, ty) {
                char b[32];
                mc_fmt_bytes(b, sizeof(b),
                             mc_jnum(ty, json_object_get(ty, "bytes_per_unit") ? "bytes_per_unit"
                                                                               : "bytes_per_min"),
                             1);
                fprintf(out, "\n  grows at %s  %s per %s", mc_jstr(ty, "line"), b,
                        json_object_get(ty, "bytes_per_unit") ? "unit" : "minute");
            }
            continue;
        }
        fprintf(out, "\n%s%s%s in process %lld: %.0f -> %.0f, %+.1f per minute",
                colour ? "\033[1;31m" : "", mc_jstr(f, "kind"), colour ? "\033[0m" : "",
                (long long)json_integer_value(json_object_get(f, "pid")), mc_jnum(ev, "start"),
                mc_jnum(ev, "end"), mc_jnum(ev, "per_min"));
        if (json_object_get(ev, "per_unit"))
            fprintf(out, ", %+.2f per 1000 units", mc_jnum(ev, "per_unit") * 1000);
        if (json_object_get(f, "limit"))
            fprintf(out, "; stopped only by the descriptor limit (%.0f): opens now fail",
                    mc_jnum(f, "limit"));
        if (json_object_get(f, "lifetime_s")) {
            fprintf(out, "\n  %.1f connections a second, each open %.2f s on average (%.1f open)",
                    mc_jnum(f, "per_s"), mc_jnum(f, "lifetime_s"), mc_jnum(f, "open_mean"));
            if (json_object_get(f, "units_per_connection"))
                fprintf(out, ", %.2f units of work each", mc_jnum(f, "units_per_connection"));
        }
        json_t *st;
        size_t k;
        json_array_foreach (json_object_get(f, "stacks"), k, st) {
            json_t *fr = json_array_get(json_object_get(st, "frames"),
                                        (size_t)json_integer_value(json_object_get(st, "site")));
            char where[600];
            mc_report_frame_text(fr, where, sizeof(where));
            if (json_object_get(st, "open")) {
                /* Descriptors: the opening stack's rate, then what is open. */
                fprintf(out, "\n  %+.0f open (", mc_jnum(st, "count"));
                if (json_object_get(st, "per_unit"))
                    fprintf(out, "%+.2f per 1000 units", mc_jnum(st, "per_unit") * 1000);
                else
                    fprintf(out, "%+.1f per minute", mc_jnum(st, "per_min"));
                const char *kn;
                json_t *kv;
                json_object_foreach (json_object_get(st, "kinds"), kn, kv)
                    fprintf(out, ", %lld %s", (long long)json_integer_value(kv), kn);
                fprintf(out, ") opened by %s", where);
            } else {
                fprintf(out, "\n  %.0f %s from %s", mc_jnum(st, "count"), mc_jstr(st, "what"),
                        where);
            }
        }
        json_array_foreach (json_object_get(f, "python_lines"), k, st)
            fprintf(out, "\n  opened at %s  (%.0f sockets still open, made while traced)",
                    mc_jstr(st, "line"), mc_jnum(st, "sockets"));
        json_t *peer;
        json_array_foreach (json_object_get(f, "peers"), k, peer)
            fprintf(out, "%s%s %s x%.0f", k ? ", " : "\n  peers: ", mc_jstr(peer, "peer"),
                    mc_jstr(peer, "state"), mc_jnum(peer, "count"));
    }
    if (json_array_size(json_object_get(sum, "findings"))) fputc('\n', out);
    const char *v = mc_jstr(sum, "verdict");
    fprintf(out, "\nverdict: %s%s%s", colour_of(v, colour), v, colour ? "\033[0m" : "");
    long long nc = (long long)json_integer_value(json_object_get(sum, "creeping_stacks"));
    if (nc) fprintf(out, " (%lld creeping stack%s)", nc, nc == 1 ? "" : "s");
    if (*mc_jstr(sum, "reason")) fprintf(out, " (%s)", mc_jstr(sum, "reason"));
    fprintf(out, "\n");
}

/* Both public renderers write through the folding buffer; short of memory
 * they write straight to out, unfolded. */
void mc_report_text(json_t *doc, FILE *out, int colour, int top)
{
    struct mc_text_buf tb;
    int ok = mc_text_begin(&tb) == 0;
    text_body(doc, ok ? tb.f : out, colour, top);
    mc_text_end(&tb, out);
}

void mc_report_compare(json_t **docs, int n, FILE *out, int colour)
{
    struct mc_text_buf tb;
    int ok = mc_text_begin(&tb) == 0;
    compare_body(docs, n, ok ? tb.f : out, colour);
    mc_text_end(&tb, out);
}
