/* sites.h - stacks that print the same (the same functions, files and
 * lines) merged into one, before any verdict (sites.c). */
#ifndef MC_SITES_H
#define MC_SITES_H

#include "analysis/collector.h"
#include "analysis/symbolize.h"

/* Adds the series of every stack of p that prints like an earlier one
 * into that one, whose `merged` then counts them, and drops them. Call it
 * once the series are final. Returns how many stacks were merged, or -1
 * when out of memory (nothing merged). */
int mc_sites_merge(struct mc_proc *p, struct mc_symbolizer *sym);

#endif
