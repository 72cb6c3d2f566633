/* result_int.h - what the parts of the result builder (result_*.c) share:
 * small helpers for series and slopes, and each part's entry point. Not
 * for the renderers: they read the document, not the collector. */
#ifndef MC_RESULT_INT_H
#define MC_RESULT_INT_H

#include <math.h>

#include "analysis/result.h"
#include "analysis/stats.h"

static inline json_t *farray(const double *v, uint32_t n)
{
    json_t *a = json_array();
    for (uint32_t i = 0; i < n; i++)
        json_array_append_new(a, json_real(round(v[i] * 1000) / 1000));
    return a;
}

static inline json_t *iarray(const int64_t *v, uint32_t n)
{
    json_t *a = json_array();
    for (uint32_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

/* Whether the work axis moved: then growth is also stated per unit. */
static inline int has_work(const struct mc_points *s)
{
    uint32_t n = s->clk.n;
    return n >= 2 && s->work[n - 1] > s->work[0];
}

static inline void to_minutes(const struct mc_points *s, double *x)
{
    for (uint32_t i = 0; i < MC_SERIES_MAX; i++)
        x[i] = i < s->clk.n ? s->t[i] / 60.0 : 0;
}

/* Slope of y against x, 0 when undefined. */
static inline double slope_of(const double *x, const double *y, uint32_t n)
{
    double s = 0;
    if (n < 2 || mc_theil_sen(x, y, n, &s, NULL) != 0) return 0;
    return s;
}

/* result_stacks.c: every stack of a process judged (allocation age
 * included) and the top ones as objects; *creeping counts the CREEPs. */
json_t *mc_build_stacks(struct mc_proc *p, const struct mc_run_info *ri, struct mc_symbolizer *sym,
                        int work, int *creeping);
/* What the stacks under a finding are ranked by. */
enum top_by {
    TOP_CONNECTS, /* TCP connections started, cumulative */
    TOP_THREADS,  /* threads started, cumulative */
    TOP_UNJOINED, /* threads ended and not joined, now */
    TOP_FDS,      /* growth of the descriptors it opened that are open */
    TOP_SOCKETS,  /* the same, stacks that opened sockets only */
};
/* The three stacks that rank highest by the given measure (result_stacks.c). */
json_t *mc_build_top_stacks(struct mc_proc *p, struct mc_symbolizer *sym, enum top_by by);
/* Open descriptors by kind, as counted in an array of MC_FD_KINDS. */
json_t *mc_build_fd_kinds(const int64_t *live);

/* result_findings.c: FD, SOCKET and THREAD CREEP from the metrics m of
 * proc (the process's object); CONNECTION CHURN; ALLOCATOR RETENTION (and
 * the malloc_trim object of the process). */
void mc_build_resource_findings(json_t *findings, json_t *proc, json_t *m, struct mc_proc *p,
                                struct mc_symbolizer *sym);
void mc_build_churn(json_t *findings, json_t *o, struct mc_proc *p, struct mc_symbolizer *sym);
void mc_build_retention(json_t *findings, json_t *o, struct mc_proc *p, struct mc_symbolizer *sym);
/* The peers holding most of a process's TCP sockets, and what the
 * descriptor hooks counted, as objects. */
json_t *mc_build_peers(const struct mc_proc_res *r);
json_t *mc_build_descriptors(const struct mc_shm_header *h);

/* result_python.c: the Python section of a process (types, garbage,
 * lines, sockets) and its findings; PYTHON CREEP from its stacks. */
void mc_build_python(json_t *findings, json_t *o, struct mc_proc *p);
void mc_build_python_creep(json_t *findings, json_t *stacks, pid_t pid, int work);
/* Judges the object types of a saved process (proc) again from their
 * series and the snapshots' clock, and PYTHON OBJECTS CREEP with them
 * (reanalyze.c); a run saved without that clock is left as it is. */
void mc_build_python_reanalyze(json_t *findings, json_t *proc);

/* result_build.c: the age of a process's whole heap; NULL without one. */
json_t *mc_build_proc_age(const struct mc_proc *p);

#endif
