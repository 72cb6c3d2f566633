/* main.c - the memcreep command: dispatches to a subcommand. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/supervise.h"

#ifndef MC_VERSION
#define MC_VERSION "0.1.0"
#endif

void mc_error(const char *fmt, ...)
{
    va_list ap;
    fputs("memcreep: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void usage(FILE *f)
{
    fputs("usage: memcreep <command> [options]\n"
          "\n"
          "Finds memory that grows with work and never comes back, and names the code\n"
          "that allocated it.\n"
          "\n"
          "commands:\n"
          "  run [options] -- TARGET [ARGS...]   run TARGET under watch and report creep\n"
          "  attach PID [options]               watch a running process (and its children)\n"
          "                                     from outside, and from inside once memcreep's\n"
          "                                     library is loaded into it\n"
          "  load URL [options]                 send HTTP/1.1 or HTTP/2 load and summarise\n"
          "  report RUN [options]               show a finished run again (RUN: a run's\n"
          "                                     output directory or its result.json)\n"
          "  diff RUN_A RUN_B                   two finished runs side by side (before and\n"
          "                                     after a fix, h1 against h2)\n"
          "  help                               this text; 'memcreep run --help' for options\n"
          "  version                            print the version\n"
          "\n"
          "exit status:\n"
          "  0  no creep found (or found, without --fail-on-creep)\n"
          "  1  creep found and --fail-on-creep given\n"
          "  2  usage error: bad option or value, unreadable result, unwritable output\n"
          "  3  the target could not be started, exited at once with an error, or the\n"
          "     preload could not work in it (statically linked target: RSS only); for\n"
          "     attach, the process could not be attached to (said on one line)\n"
          "  4  internal error, or an output file could not be written (a full disk)\n"
          "  5  the target failed by itself after it ran (non-zero exit status, or a\n"
          "     signal memcreep did not send), or the --workload command failed\n",
          f);
}

int main(int argc, char **argv)
{
    mc_signals_inherit();
    if (argc < 2) {
        usage(stderr);
        return MC_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "run")) return mc_cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "attach")) return mc_cmd_attach(argc - 1, argv + 1);
    if (!strcmp(cmd, "report")) return mc_cmd_report(argc - 1, argv + 1);
    if (!strcmp(cmd, "load")) return mc_cmd_load(argc - 1, argv + 1);
    if (!strcmp(cmd, "diff")) return mc_cmd_diff(argc - 1, argv + 1);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return MC_EXIT_OK;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("memcreep %s\n", MC_VERSION);
        return MC_EXIT_OK;
    }
    mc_error("unknown command '%s' (try 'memcreep help')", cmd);
    return MC_EXIT_USAGE;
}
