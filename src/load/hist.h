/* hist.h - latency histogram in the manner of HdrHistogram: constant
 * relative precision (about 0.1%) from 1 microsecond to about an hour, in
 * fixed memory, so percentiles come from every sample, not a subset. */
#ifndef MC_HIST_H
#define MC_HIST_H

#include <stdint.h>

#define MC_HIST_SUB 1024 /* sub-buckets per power of two: 2^-10 precision */
#define MC_HIST_POW 32   /* powers of two covered above MC_HIST_SUB us */

struct mc_hist {
    uint64_t count;
    uint64_t max_us, min_us;
    double sum_us;
    uint64_t b[MC_HIST_POW + 1][MC_HIST_SUB];
};

void mc_hist_reset(struct mc_hist *h);
/* Records one value in microseconds (clamped to the range). */
void mc_hist_record(struct mc_hist *h, uint64_t us);
/* Adds all of src into dst. */
void mc_hist_merge(struct mc_hist *dst, const struct mc_hist *src);
/* The value at quantile q (0..1), in microseconds; 0 when empty. Reported
 * as the highest value of its bucket, as HdrHistogram does. */
uint64_t mc_hist_quantile(const struct mc_hist *h, double q);

#endif
