/* cli.h - the subcommands of the memcreep command and their shared exit
 * statuses (documented in `memcreep --help` and the README). */
#ifndef MC_CLI_H
#define MC_CLI_H

enum mc_exit {
    MC_EXIT_OK = 0,           /* no creep (or creep without --fail-on-creep) */
    MC_EXIT_CREEP = 1,        /* creep found and --fail-on-creep given */
    MC_EXIT_USAGE = 2,        /* bad arguments, unreadable input, unwritable output */
    MC_EXIT_TARGET = 3,       /* target could not start, exited at once, or the
                                 preload could not work in it */
    MC_EXIT_INTERNAL = 4,     /* memcreep itself failed (out of memory...) */
    MC_EXIT_TARGET_FAILED = 5 /* the target ended by itself with a failure
                                 (non-zero status, or a signal memcreep did
                                 not send), or the --workload command failed */
};

int mc_cmd_run(int argc, char **argv);
int mc_cmd_attach(int argc, char **argv);
int mc_cmd_report(int argc, char **argv);
int mc_cmd_load(int argc, char **argv);
int mc_cmd_diff(int argc, char **argv);

/* Prints "memcreep: <msg>" as one line on stderr. */
void mc_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
