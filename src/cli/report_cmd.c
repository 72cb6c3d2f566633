/* report_cmd.c - `memcreep report RUN`: renders a saved result again. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/util.h"
#include "report/result.h"

static void usage(FILE *f)
{
    fputs("usage: memcreep report RUN [--format F] [--top N] [--color WHEN] [--reanalyze]\n"
          "  RUN            a run's output directory, or its result.json\n"
          "  --format F     text (default), json, html (one self-contained page with\n"
          "                 charts and a flame graph), folded (the stacks that grew, for\n"
          "                 flamegraph.pl and speedscope) or pprof (gzipped profile.proto\n"
          "                 for go tool pprof; binary, so not to a terminal)\n"
          "  --top N        stacks shown per process (default 10, 0 = all kept)\n"
          "  --color WHEN   auto (default), always, never\n"
          "  --reanalyze    judge the run again from its saved series with this\n"
          "                 memcreep's rules (verdicts, metrics, findings, summary)\n",
          f);
}

int mc_cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, 0, 'f'}, {"top", required_argument, 0, 't'},
        {"color", required_argument, 0, 'c'},  {"reanalyze", no_argument, 0, 'r'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *format = "text", *color = "auto";
    uint64_t top = 10;
    int c, reanalyze = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "f:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            format = optarg;
            break;
        case 't':
            if (mc_parse_u64(optarg, 0, 100000, &top) != 0) {
                mc_error("--top takes a whole number, not '%s'", optarg);
                return MC_EXIT_USAGE;
            }
            break;
        case 'c':
            color = optarg;
            break;
        case 'r':
            reanalyze = 1;
            break;
        case 'h':
            usage(stdout);
            return MC_EXIT_OK;
        default:
            mc_error("report: unknown option '%s' (try 'memcreep report --help')",
                     argv[optind - 1]);
            return MC_EXIT_USAGE;
        }
    }
    static const char *formats[] = {"text", "json", "html", "folded", "pprof"};
    size_t fi = 0;
    while (fi < sizeof(formats) / sizeof(formats[0]) && strcmp(format, formats[fi]))
        fi++;
    if (fi == sizeof(formats) / sizeof(formats[0])) {
        mc_error("--format must be text, json, html, folded or pprof, not '%s'", format);
        return MC_EXIT_USAGE;
    }
    if (!strcmp(format, "pprof") && isatty(1)) {
        mc_error("--format pprof writes a binary file: redirect it (> growth.pb.gz)");
        return MC_EXIT_USAGE;
    }
    if (strcmp(color, "auto") && strcmp(color, "always") && strcmp(color, "never")) {
        mc_error("--color must be auto, always or never, not '%s'", color);
        return MC_EXIT_USAGE;
    }
    if (optind != argc - 1) {
        mc_error("report needs exactly one RUN (a run directory or result.json)");
        return MC_EXIT_USAGE;
    }
    char path[4096];
    struct stat sb;
    const char *run = argv[optind];
    /* A run directory holds result.json, or h1/ and h2/ for --proto h1,h2. */
    const char *parts[] = {"", "h1/", "h2/"};
    json_t *docs[2] = {NULL, NULL};
    int n = 0, rc = MC_EXIT_OK;
    char err[512];
    int is_dir = stat(run, &sb) == 0 && S_ISDIR(sb.st_mode);
    for (int i = 0; i < 3 && n < 2; i++) {
        if (!is_dir && i > 0) break;
        if (is_dir) {
            snprintf(path, sizeof(path), "%s/%sresult.json", run, parts[i]);
            if (access(path, F_OK) != 0) continue;
        } else {
            snprintf(path, sizeof(path), "%s", run);
        }
        if (!(docs[n] = mc_result_load(path, err, sizeof(err)))) {
            mc_error("%s", err);
            rc = MC_EXIT_USAGE;
            goto out;
        }
        if (reanalyze && mc_result_reanalyze(docs[n], err, sizeof(err)) != 0) {
            mc_error("%s: cannot reanalyze: %s", path, err);
            rc = MC_EXIT_USAGE;
            n++;
            goto out;
        }
        n++;
        if (i == 0) break; /* a single run */
    }
    if (!n) {
        mc_error("%s: no result.json (nor h1/ or h2/ with one) in this directory", run);
        return MC_EXIT_USAGE;
    }
    int colour = !strcmp(color, "always") || (!strcmp(color, "auto") && isatty(1));
    if (!strcmp(format, "html")) {
        /* One page, with both protocols side by side for an h1,h2 run. */
        int r = mc_report_html(docs, n, stdout, (int)top);
        if (r != 0) {
            mc_error("cannot write the page: %s", strerror(-r));
            rc = MC_EXIT_USAGE;
        }
        goto out;
    }
    if (!strcmp(format, "pprof") && n == 2) {
        mc_error("%s holds two runs (h1/ and h2/): give one of them", run);
        rc = MC_EXIT_USAGE;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (!strcmp(format, "json")) {
            json_dumpf(docs[i], stdout, JSON_INDENT(1) | JSON_REAL_PRECISION(10));
            fputc('\n', stdout);
        } else if (!strcmp(format, "folded")) {
            mc_report_folded(docs[i], stdout);
        } else if (!strcmp(format, "pprof")) {
            int r = mc_report_pprof(docs[i], stdout);
            if (r != 0) {
                mc_error("cannot write the profile: %s", strerror(-r));
                rc = MC_EXIT_USAGE;
            }
        } else {
            mc_report_text(docs[i], stdout, colour, (int)top);
        }
    }
    if (n == 2 && !strcmp(format, "text")) mc_report_compare(docs, 2, stdout, colour);
out:
    for (int i = 0; i < 2; i++)
        if (docs[i]) json_decref(docs[i]);
    return rc;
}
