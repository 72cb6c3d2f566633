/* findings.h - the kinds of finding memcreep reports, in one table.
 *
 * A finding is a conclusion about one process beyond a single stack's
 * verdict: descriptors that pile up, memory the allocator keeps, a
 * connection per request. Each kind has a stable code (what CI jobs and
 * scripts match: it never changes once released), a title (what people
 * read; it may be reworded), a severity, and the metric it is measured on
 * (a key of the process' "metrics" in result.json, or the section it comes
 * from). To add a kind, add a line here; the rule that finds it goes in
 * src/analysis, its rendering in src/report.
 *
 * Severity:
 *   creep  something grows without bound: the summary verdict is CREEP and
 *          --fail-on-creep fails the run
 *   cost   nothing leaks, but memory or time is spent that need not be
 *   info   worth knowing, no action implied */
#ifndef MC_FINDINGS_H
#define MC_FINDINGS_H

/* X(NAME, code, title, severity, metric) */
#define MC_FINDING_MAP(X)                                                                          \
    X(FD_CREEP, "fd_creep", "FD CREEP", CREEP, "fds")                                              \
    X(SOCKET_CREEP, "socket_creep", "SOCKET CREEP", CREEP, "sockets")                              \
    X(CLOSE_WAIT_CREEP, "close_wait_creep", "SOCKET CREEP (CLOSE_WAIT: peers closed, we did not)", \
      CREEP, "tcp_close_wait")                                                                     \
    X(THREAD_CREEP, "thread_creep", "THREAD CREEP", CREEP, "threads")                              \
    X(UNJOINED_THREAD_CREEP, "unjoined_thread_creep",                                              \
      "THREAD CREEP (ended, never joined nor detached)", CREEP, "threads_unjoined")                \
    X(PYTHON_OBJECTS_CREEP, "python_objects_creep", "PYTHON OBJECTS CREEP", CREEP, "python.types") \
    X(PYTHON_CREEP, "python_creep", "PYTHON CREEP", CREEP, "stacks")                               \
    X(ALLOCATOR_RETENTION, "allocator_retention", "ALLOCATOR RETENTION", COST, "allocator_free")   \
    X(CONNECTION_CHURN, "connection_churn", "CONNECTION CHURN", COST, "connects")                  \
    X(CYCLE_GARBAGE, "cycle_garbage", "CYCLE GARBAGE", COST, "python.cycle_garbage")

enum mc_finding_kind {
#define MC_FINDING_ENUM(name, code, title, sev, metric) MC_F_##name,
    MC_FINDING_MAP(MC_FINDING_ENUM)
#undef MC_FINDING_ENUM
        MC_F_COUNT
};

enum mc_severity { MC_SEV_CREEP, MC_SEV_COST, MC_SEV_INFO };

struct mc_finding_def {
    const char *code;
    const char *title;
    enum mc_severity severity;
    const char *metric;
};

/* The table, indexed by kind. */
extern const struct mc_finding_def mc_findings[MC_F_COUNT];

/* The kinds that a metric's CREEP verdict is enough for (FD, SOCKET,
 * THREAD CREEP), in the order reports give them. */
#define MC_METRIC_FINDINGS 5
extern const enum mc_finding_kind mc_metric_findings[MC_METRIC_FINDINGS];

/* "creep", "cost", "info". */
const char *mc_severity_name(enum mc_severity s);
/* The kind whose code or title (result.json version 1 had titles only) is
 * s, or -1. */
int mc_finding_parse(const char *s);

#endif
