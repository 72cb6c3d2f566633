/* diff_cmd.c - `memcreep diff RUN_A RUN_B`: two finished runs side by
 * side (report/diff.c renders them). */
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
    fputs("usage: memcreep diff RUN_A RUN_B [--format text|html]\n"
          "  RUN_A, RUN_B   run output directories (or their result.json); for a run\n"
          "                 made with --proto h1,h2, name RUN/h1 or RUN/h2\n"
          "  --format F     text (default) or html (one page, the two runs' charts\n"
          "                 drawn over each other)\n",
          f);
}

/* Loads the result of one run (a directory or a result.json). Returns a new
 * reference, or NULL after printing why. */
static json_t *load_run(const char *run)
{
    char path[4096], err[512];
    struct stat sb;
    if (stat(run, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        snprintf(path, sizeof(path), "%s/result.json", run);
        if (access(path, F_OK) != 0) {
            snprintf(path, sizeof(path), "%s/h1/result.json", run);
            mc_error("%s: no result.json in this directory%s", run,
                     access(path, F_OK) == 0 ? " (a --proto h1,h2 run: name RUN/h1 or RUN/h2)"
                                             : "");
            return NULL;
        }
    } else {
        snprintf(path, sizeof(path), "%s", run);
    }
    json_t *doc = mc_result_load(path, err, sizeof(err));
    if (!doc) mc_error("%s", err);
    return doc;
}

int mc_cmd_diff(int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, 0, 'f'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *format = "text";
    int c;
    optind = 1;
    opterr = 0;
    /* GNU getopt also takes the options that follow the two runs. */
    while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            format = optarg;
            break;
        case 'h':
            usage(stdout);
            return MC_EXIT_OK;
        default:
            mc_error("diff: unknown option '%s' (try 'memcreep diff --help')", argv[optind - 1]);
            return MC_EXIT_USAGE;
        }
    }
    if (argc - optind != 2) {
        mc_error("diff needs exactly two runs: memcreep diff RUN_A RUN_B");
        return MC_EXIT_USAGE;
    }
    if (strcmp(format, "text") && strcmp(format, "html")) {
        mc_error("--format must be text or html, not '%s'", format);
        return MC_EXIT_USAGE;
    }
    const char *runs[2] = {argv[optind], argv[optind + 1]};
    json_t *a = load_run(runs[0]);
    json_t *b = a ? load_run(runs[1]) : NULL;
    int rc = MC_EXIT_OK;
    if (!a || !b) {
        rc = MC_EXIT_USAGE;
        goto out;
    }
    if (!strcmp(format, "html")) {
        int r = mc_report_diff_html(a, b, runs[0], runs[1], stdout);
        if (r != 0) {
            mc_error("cannot write the page: %s", strerror(-r));
            rc = MC_EXIT_USAGE;
        }
    } else {
        mc_report_diff(a, b, runs[0], runs[1], stdout);
    }
out:
    if (a) json_decref(a);
    if (b) json_decref(b);
    return rc;
}
