/* diff.h - how two runs are matched (diff.c), for the text and the HTML
 * renderings of `memcreep diff`: processes by program, stacks by place in
 * the code (the site's function, file and line, and two callers). */
#ifndef MC_REPORT_DIFF_H
#define MC_REPORT_DIFF_H

#include <jansson.h>
#include <stddef.h>

/* One stack of either run: its growth in A (v[0]) and B (v[1]), and in
 * which of the two it appears. */
struct mc_diff_row {
    char key[256];
    double v[2];
    int in[2];
};

/* The root process of a run (its preloaded image that did not exec), or
 * NULL. Borrowed from doc. */
json_t *mc_diff_root(json_t *doc);
/* 1 when both roots counted work, so rates are per unit (else per min). */
int mc_diff_per_unit(json_t *a, json_t *b);
/* The stacks of both runs matched by key, largest change first, in a new
 * array (*rows, free it; NULL when memory is short). Returns the count. */
size_t mc_diff_stacks(json_t *a, json_t *b, int per_unit, struct mc_diff_row **rows);
/* The first process of b running the same program as p and not yet in
 * used[0..cap) (which it marks), or NULL. */
json_t *mc_diff_match(json_t *b, json_t *p, char *used, size_t cap);

#endif
