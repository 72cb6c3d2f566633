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
    fputs("usage: memcreep diff RUN_A RUN_B\n"
          "  RUN_A, RUN_B   run output directories (or their result.json); for a run\n"
          "                 made with --proto h1,h2, name RUN/h1 or RUN/h2\n",
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
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return MC_EXIT_OK;
    }
    if (argc != 3 || argv[1][0] == '-' || argv[2][0] == '-') {
        mc_error("diff needs exactly two runs: memcreep diff RUN_A RUN_B");
        return MC_EXIT_USAGE;
    }
    json_t *a = load_run(argv[1]);
    json_t *b = a ? load_run(argv[2]) : NULL;
    if (!a || !b) {
        if (a) json_decref(a);
        return MC_EXIT_USAGE;
    }
    mc_report_diff(a, b, argv[1], argv[2], stdout);
    json_decref(a);
    json_decref(b);
    return MC_EXIT_OK;
}
