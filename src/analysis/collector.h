/* collector.h - samples every process of the target's tree at each tick:
 * the shared mappings of preloaded processes (per-stack live bytes and
 * counts, allocator statistics, work units) and /proc for all of them
 * (RSS, liveness). Keeps bounded series per process, per stack and for the
 * whole tree. */
#ifndef MC_COLLECTOR_H
#define MC_COLLECTOR_H

#include <limits.h>
#include <sys/types.h>

#include "analysis/series.h"
#include "common/proc.h"
#include "common/shm_reader.h"

enum mc_end {
    MC_END_RUNNING = 0,
    MC_END_EXITED,   /* exit status in status */
    MC_END_SIGNALED, /* killed by signal sig */
    MC_END_EXECED,   /* this image was replaced by exec */
    MC_END_VANISHED, /* gone; not our child, so how is unknown */
    MC_END_STOPPED,  /* still running when memcreep stopped watching */
};

/* Census rows a process can have: one as each epoch after the first
 * starts, one at the end. */
#define MC_AGE_ROWS (MC_AGE_EPOCHS + 1)

struct mc_stack_series {
    int64_t bytes[MC_SERIES_MAX];
    int64_t count[MC_SERIES_MAX];
    int64_t fds[MC_SERIES_MAX]; /* open descriptors it opened (preload view) */
    uint64_t sample_mean;       /* its blocks are sampled: one per this many bytes */
    uint32_t merged;            /* other stacks that print the same, added in (sites.c) */
    /* Allocation age (age_census.c): what the stack held by epoch at each
     * census row of its process; age_seen has bit k set when row k was
     * read while the stack had a series. */
    uint32_t age_seen;
    int64_t age[MC_AGE_ROWS][MC_AGE_EPOCHS];
};

/* A Python type's series: live objects after each snapshot, and the cycle
 * garbage of that type found so far (cumulative). */
struct mc_py_series {
    int64_t live[MC_SERIES_MAX];
    int64_t garbage[MC_SERIES_MAX];
    /* Allocation age (age_census.c): what its objects weighed by epoch at
     * each Python age row of its process; bit k of age_seen: row k read. */
    uint32_t age_seen;
    int64_t age[MC_AGE_ROWS][MC_AGE_EPOCHS];
};

struct mc_points {
    struct mc_clock clk;
    double t[MC_SERIES_MAX];    /* seconds since the run started */
    double work[MC_SERIES_MAX]; /* units of work done so far */
    double rss[MC_SERIES_MAX];
    double heap[MC_SERIES_MAX];       /* live bytes the program holds */
    double heap_count[MC_SERIES_MAX]; /* live blocks */
    /* Of heap, what stacks whose blocks are sampled hold (an estimate with
     * sampling noise), and the largest mean they were sampled with. */
    double heap_sampled[MC_SERIES_MAX];
    double sample_mean;
    double alloc_free[MC_SERIES_MAX]; /* free bytes glibc keeps */
    double alloc_held[MC_SERIES_MAX]; /* bytes glibc got from the kernel */
    double fds[MC_SERIES_MAX];        /* open descriptors */
    double sockets[MC_SERIES_MAX];    /* of which sockets */
    double tcp_est[MC_SERIES_MAX];    /* TCP ESTABLISHED */
    double tcp_close_wait[MC_SERIES_MAX];
    double time_wait[MC_SERIES_MAX]; /* TIME_WAIT on its ports / to its peers */
    double threads[MC_SERIES_MAX];
    double connects[MC_SERIES_MAX]; /* TCP connections started so far */
    double unjoined[MC_SERIES_MAX]; /* threads that ended, never joined */
};

struct mc_proc {
    pid_t pid, ppid;
    int has_map;
    struct mc_map map;
    char map_path[PATH_MAX];
    char exe[MC_PATH_MAX];
    enum mc_end end;
    int status, sig;
    double t_start, t_end;
    double last_rss;
    double fd_limit; /* soft RLIMIT_NOFILE as last read, 0 = unknown */
    struct mc_proc_res last_res;
    struct mc_points pts;
    struct mc_stack_series **stk; /* indexed by slot, NULL until seen */
    struct mc_stack_value *vals;  /* every stack's value at the last sample */
    uint32_t stk_cap;
    uint32_t stk_alloc; /* entries mapped for stk and vals */
    uint64_t torn;
    /* Python snapshots (preload/python.c): one asked before each sample. */
    struct mc_shm_module *mods; /* private copy for symbolizing, or NULL */
    uint64_t nmods;
    struct mc_py_series **py; /* indexed like the mapping's type table */
    uint32_t py_cap;
    int64_t py_ticket; /* request outstanding, 0 = none */
    double py_asked;   /* mc_now() of the last request */
    int py_fresh;      /* a snapshot completed during this tick */
    /* The Python series have a clock of their own: a point per snapshot. */
    struct mc_clock py_clk;
    double py_t[MC_SERIES_MAX];    /* seconds since the run started */
    double py_work[MC_SERIES_MAX]; /* work done at the snapshot */
    uint64_t py_late;              /* samples taken without a fresh snapshot */
    /* The malloc_trim probe at the end of the run (see session.c). */
    int trim_asked, trim_served;
    int64_t trim_ticket;
    double trim_rss_before, trim_rss_after, trim_free_before, trim_heap, trim_free_after;
    double trim_rest_s; /* how long the target had been at rest; 0: busy */
    /* Census rows (age_census.c): row k was taken as epoch age_epoch[k]
     * started (so the epochs before it were closed), at age_t[k] seconds
     * after launch. */
    int age_rows;
    int64_t age_ticket; /* > 0: a census asked for, not read yet */
    uint32_t age_epoch[MC_AGE_ROWS];
    double age_t[MC_AGE_ROWS];
    /* The same for its Python types, served by the next snapshot after
     * each request (py_age_ticket, for epoch py_age_want). */
    int py_age_rows;
    int64_t py_age_ticket;
    uint32_t py_age_want;
    uint32_t py_age_epoch[MC_AGE_ROWS];
    double py_age_t[MC_AGE_ROWS];
    int trim_by_rest; /* served by the rest thread (at rest, in the target) */
    int trim_npins;   /* the live blocks at the top of the brk heap */
    struct {
        uint32_t slot;
        double bytes, below_top;
    } trim_pin[4];
};

/* At most this many processes are kept: past it the oldest that ended is
 * dropped (and counted), so that a target that keeps starting short-lived
 * children does not make memcreep grow with the length of the run. */
#define MC_MAX_PROCS 256
/* Mappings of running processes beyond MC_MAX_PROCS remembered as not
 * kept (so they are not read again and again). */
#define MC_MAX_SKIPPED 4096

struct mc_collector {
    char dir[PATH_MAX];
    size_t dropped;
    struct {
        pid_t pid;
        char name[48];
    } skip[MC_MAX_SKIPPED];
    size_t nskip;
    pid_t root;
    double t0;
    struct mc_proc **procs;
    size_t nprocs, cap;
    struct mc_points tree;
    int root_ended;
    enum mc_end root_how;
    int root_status, root_sig;
    /* Work done as counted by memcreep itself (the load driver); when
     * set (>= 0) it is the x axis for every process instead of the units
     * the target marked. */
    double external_work;
    double t0_series;  /* seconds after launch when the series (re)started */
    int frozen;        /* no more points: what follows is not the workload */
    int every_tick;    /* read /proc at every tick, kept or not (a metrics endpoint shows it) */
    double py_wait;    /* longest wait for Python snapshots per sample, s */
    double py_min_gap; /* least time between Python snapshots, s (0: 0.5) */
    /* Allocation epochs (age_census.c): the current one, and the schedule:
     * by load round (the session starts each), or by time, age_slice
     * seconds (doubling after the fourth when the run's length is unknown). */
    uint32_t age_epoch;
    double age_next, age_slice;
    int age_by_round, age_doubling;
    /* The machine's TCP table, read once per sample for all processes. */
    struct mc_tcp_table *tcp;
};

/* ---- age_census.c: allocation epochs and their censuses ---- */

/* Sets the epoch schedule: by_round (mc_age_next_epoch at each round), or
 * slices of run_s / 12 seconds, or, when run_s is 0 (length unknown),
 * 1-second slices doubling after the fourth. */
void mc_age_schedule(struct mc_collector *c, int by_round, double run_s);
/* Starts the next epoch in every process that has a rest thread and asks
 * each for a census (none past the last epoch). */
void mc_age_next_epoch(struct mc_collector *c);
/* From each tick: starts the next epoch when the time schedule says so,
 * and reads the censuses that were served. */
void mc_age_tick(struct mc_collector *c);
/* The last census of every running process, waited for (at most 1 s). */
void mc_age_final(struct mc_collector *c);

/* Starts collecting for the tree rooted at root, whose mappings appear in
 * dir. t0 is mc_now() at launch. Returns 0 or -ENOMEM. */
int mc_collector_init(struct mc_collector *c, const char *dir, pid_t root, double t0);
void mc_collector_free(struct mc_collector *c);
/* Takes one sample of everything. final forces the sample to be kept and
 * closes processes that are gone. */
void mc_collector_tick(struct mc_collector *c, int final);
/* Records how the root process ended (from waitpid); the next tick closes
 * its entry with a last sample. */
void mc_collector_root_ended(struct mc_collector *c, enum mc_end how, int status, int sig);
/* Forgets every series point taken so far (the start-up and warm-up of a
 * service are not what is measured); processes and stacks stay known. */
void mc_collector_restart(struct mc_collector *c);
/* Keeps every point taken so far as the last: later ticks only record how
 * processes end. Used before memcreep itself disturbs the target (the
 * malloc_trim probe), so that the series end where the workload ended. */
void mc_collector_freeze(struct mc_collector *c);
/* Marks processes still running as MC_END_STOPPED (end of watching). */
void mc_collector_close(struct mc_collector *c);
/* p's published modules, copied for symbolizing (p->mods, p->nmods): made
 * at the first call and again after a dlopen published more. NULL when
 * there are none or out of memory. */
const struct mc_shm_module *mc_proc_modules(struct mc_proc *p);
/* The root's entry (preloaded image if any), or NULL. */
struct mc_proc *mc_collector_root(struct mc_collector *c);

#endif
