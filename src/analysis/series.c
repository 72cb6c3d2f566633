/* series.c - decimation of bounded time series (see series.h). */
#include "series.h"

int mc_clock_next(struct mc_clock *c, int final, int *halved)
{
    *halved = 0;
    if (c->stride == 0) c->stride = 1;
    uint64_t k = c->seen++;
    if (!final && k % c->stride != 0) return -1;
    if (c->n == MC_SERIES_MAX) {
        c->n = MC_SERIES_MAX / 2;
        c->stride *= 2;
        *halved = 1;
    }
    return (int)c->n++;
}

int mc_clock_would_keep(const struct mc_clock *c)
{
    uint64_t stride = c->stride ? c->stride : 1;
    return c->seen % stride == 0;
}

void mc_series_halve_f64(double *a, uint32_t n)
{
    for (uint32_t i = 0; 2 * i < n; i++)
        a[i] = a[2 * i];
}

void mc_series_halve_i64(int64_t *a, uint32_t n)
{
    for (uint32_t i = 0; 2 * i < n; i++)
        a[i] = a[2 * i];
}
