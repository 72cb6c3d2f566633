/* age.h - allocation age: how the blocks a stack made in each epoch live
 * on, from its census rows (age_census.c). docs/statistics.md, "Allocation
 * age", gives the rule and its reasons. */
#ifndef MC_AGE_H
#define MC_AGE_H

#include <stdint.h>

#include "analysis/verdict.h"
#include "common/shm_format.h"

/* A stack's census rows: row k was taken as epoch epoch[k] started (every
 * earlier epoch closed), t[k] seconds into the run; bytes[k][e] is what
 * the stack still held from epoch e then. Bit k of seen: row k is known. */
struct mc_age_rows {
    int n;
    const uint32_t *epoch;
    const double *t;
    uint32_t seen;
    const int64_t (*bytes)[MC_AGE_EPOCHS];
};

struct mc_age {
    int judged;       /* old epochs held enough to say (MC_AGE_MIN_BYTES) */
    int old_epochs;   /* epochs counted as old */
    double survival;  /* of what old epochs held once settled, the share left */
    double old_share; /* of what the stack holds now, the share from old epochs */
    double older_s;   /* old = made more than this many seconds before the last row */
    int older_epochs; /* the same in epochs (rounds when an epoch is a round) */
    double settled;   /* bytes old epochs held once settled */
    double now;       /* bytes they hold at the last row */
};

/* What old epochs must have held, settled, for a survival to be judged. */
#define MC_AGE_MIN_BYTES 16384.0
/* CREEP needs old epochs to keep at least this share of what they held. */
#define MC_AGE_MIN_SURVIVAL 0.2

/* Reads the rows into *a. Returns 1 when judged, 0 when not (too few rows,
 * epochs or bytes); *a is filled either way. */
int mc_age_measure(const struct mc_age_rows *r, struct mc_age *a);
/* The rule: a CREEP whose old epochs did not keep what they held is
 * turnover (old blocks replaced by new), not creep: PLATEAU. Returns the
 * verdict to give; v when the age says nothing against it. */
enum mc_verdict mc_age_verdict(enum mc_verdict v, int judged, double survival);

#endif
