/* rules.h - the rules behind the findings (analysis/findings.h) that are
 * more than one series' verdict, as functions of plain numbers, so that
 * each can be tested on synthetic series (tests/unit/test_rules.c). */
#ifndef MC_RULES_H
#define MC_RULES_H

#include <stdint.h>

/* FD CREEP that the descriptor limit stopped: over n samples the open
 * descriptors fds[] grew by at least 5 and end within 16 of the soft
 * RLIMIT_NOFILE limit (0: unknown). Its series levels off at the limit,
 * which its verdict would call PLATEAU. 1 when so. */
int mc_rule_fds_at_limit(const double *fds, uint32_t n, double limit);

/* CONNECTION CHURN, from what the run saw of TCP connections. */
struct mc_churn {
    double made;      /* connections started between the first and last sample */
    double secs;      /* time between them */
    double open_mean; /* mean number ESTABLISHED over the samples */
    int has_unit;     /* units of work moved */
    double per_unit;  /* connections per unit of work, when has_unit */
    /* out */
    double per_s;      /* connections a second */
    double lifetime_s; /* mean lifetime (Little's law: open_mean / per_s) */
};

/* 1 when c is CONNECTION CHURN (the thresholds are beside the code); fills
 * c->per_s and c->lifetime_s in any case. */
int mc_rule_churn(struct mc_churn *c);

/* ALLOCATOR RETENTION: glibc holds alloc_free bytes free against live_heap
 * bytes live. 1 when at least 4 MiB and more than the live heap. */
int mc_rule_retention(double alloc_free, double live_heap);

#endif
