/* series.h - bounded time series. A series never holds more than
 * MC_SERIES_MAX points: when full, every other point is dropped and from
 * then on only every stride-th sample is kept (stride doubles each time).
 * So a one-hour run costs the same memory as a one-minute run, and the
 * points stay evenly spread over the whole run. */
#ifndef MC_SERIES_H
#define MC_SERIES_H

#include <stdint.h>

#define MC_SERIES_MAX 256

struct mc_clock {
    uint32_t n;      /* points held */
    uint32_t stride; /* samples per kept point */
    uint64_t seen;   /* samples offered */
};

/* Returns the index to write this sample at, or -1 to skip it. When it
 * returns MC_SERIES_MAX/2 after a halving, *halved is set: the caller must
 * apply mc_series_halve to every array that follows this clock. final
 * forces the sample to be kept (the last one of a run). */
int mc_clock_next(struct mc_clock *c, int final, int *halved);
/* Whether the next sample offered (not final) will be kept: what is read
 * only for the kept points need not be read otherwise. */
int mc_clock_would_keep(const struct mc_clock *c);
/* Keeps the even-indexed points of a[0..n). */
void mc_series_halve_f64(double *a, uint32_t n);
void mc_series_halve_i64(int64_t *a, uint32_t n);

#endif
