/* summary.h - the load driver's summary, as text (like wrk and h2load) and
 * as JSON. */
#ifndef MC_SUMMARY_H
#define MC_SUMMARY_H

#include <jansson.h>
#include <stdio.h>

#include "load/driver.h"

/* What the user should know about how the run went (one line into buf):
 * returns 1 when there is something, 0 when not. Today: a server that
 * answered one connection of several. */
int mc_load_warning(const struct mc_load_stats *st, char *buf, size_t len);
/* Returns the summary as a new JSON object (json_decref it). */
json_t *mc_load_summary_json(const struct mc_load_stats *st);
/* Prints the summary; what describes the run (URL, protocol, connections). */
void mc_load_summary_text(const struct mc_load_stats *st, const char *what, FILE *out);

#endif
