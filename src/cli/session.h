/* session.h - one measured session of `memcreep run`: start the target with
 * the preload, wait until it is ready, drive the work (the load driver, a
 * workload command, or nothing), stop it, and build the result document. */
#ifndef MC_SESSION_H
#define MC_SESSION_H

#include <jansson.h>
#include <limits.h>
#include <sys/types.h>

#include "cli/load_opts.h"
#include "cli/metrics.h"

struct mc_session_opts {
    char **target; /* argv of the target */
    int target_argc;
    double duration; /* 0: until the target exits (or the load is done) */
    double interval, grace, listen_timeout;
    uint64_t depth, stacks, min_growth, sample_bytes;
    uint64_t burst_rate;      /* --burst-rate, when burst_rate_set */
    int burst_rate_set;       /* else the library's default */
    uint64_t py_sample_bytes; /* --py-sample-bytes (0: objects not hooked) */
    int quiet, tty;
    int python_malloc;   /* PYTHONMALLOC=malloc in the target's environment */
    double py_trace;     /* seconds between Python line tracing windows, 0 = off */
    const char *py_unit; /* MODULE:QUALNAME whose returns are units of work, or NULL */
    /* load driven by memcreep (urls set) */
    struct mc_load_cli *load; /* NULL: no load */
    enum mc_proto proto;
    uint64_t warmup, rounds, round_requests;
    /* a workload command instead */
    const char *workload;
    const char *run_dir;        /* --run-dir: where the shared mappings go, or NULL */
    pid_t attach_pid;           /* memcreep attach: the running process (target unused) */
    int watch_only;             /* attach --watch-only: nothing enters the process */
    struct mc_metrics *metrics; /* --metrics: the live endpoint, or NULL */
};

enum mc_session_rc {
    MC_SESSION_OK = 0,
    MC_SESSION_NOT_STARTED = -1, /* could not start: message printed */
    MC_SESSION_INTERNAL = -2,
};

/* How the target (or the workload command) ended, for the exit status. */
struct mc_session_end {
    int target_failed; /* exited at once with an error, or no preload in it */
    int failed_status; /* ended by itself with this status (128 + signal when
                          a signal memcreep did not send killed it), or the
                          workload failed with it; 0 when neither */
};

/* The library's settings for a session ("MEMCREEP_DIR=..." and the rest,
 * at most MC_SESSION_SETTINGS of them) into out: the target's environment
 * under run, the attach's settings under attach. Returns how many. */
#define MC_SESSION_SETTINGS 10
int mc_session_settings(const struct mc_session_opts *o, const char *rundir,
                        char (*out)[PATH_MAX + 64]);

/* Runs one session. On success *doc holds the result (json_decref it) and
 * *end says how the target ended. */
int mc_session_run(const struct mc_session_opts *o, json_t **doc, struct mc_session_end *end);

#endif
