/* metrics.h - the live metrics endpoint of `memcreep run --metrics`
 * (OpenMetrics and the Prometheus text format over HTTP). */
#ifndef MC_METRICS_H
#define MC_METRICS_H

#include "analysis/collector.h"

struct mc_metrics;

/* Listens on addr ("127.0.0.1:9464", "[::1]:9464") and starts serving.
 * Returns 0 with *m set, -EINVAL for an address that is not HOST:PORT with
 * a numeric host, or the -errno of socket/bind/listen (-EADDRINUSE...). */
int mc_metrics_start(const char *addr, struct mc_metrics **m);
/* Renders what the collector holds now for the next scrapes (at most
 * every half second unless force). requests: the load driver's count, or
 * -1 without one; elapsed: seconds since the target started. m may be
 * NULL (no endpoint). */
void mc_metrics_update(struct mc_metrics *m, struct mc_collector *c, double requests,
                       double elapsed, int force);
/* Stops serving, frees everything. NULL is fine. */
void mc_metrics_stop(struct mc_metrics *m);

#endif
