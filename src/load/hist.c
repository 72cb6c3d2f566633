/* hist.c - log-linear latency histogram (see hist.h).
 *
 * Row 0 counts values below 1024 us exactly. A value v >= 1024 whose
 * highest set bit is k goes to row r = k - 9 and column v >> r, which lies
 * in [512, 1024): each row covers [2^(r+9), 2^(r+10)) in 512 steps of
 * 2^r, a relative width of 1/512, so a reported percentile is within 0.2%
 * of the true sample. The lower half of rows >= 1 is unused, traded for a
 * locate() without branches beyond the first. Row 32 reaches 2^42 us. */
#include <string.h>

#include "load/hist.h"

void mc_hist_reset(struct mc_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min_us = UINT64_MAX;
}

static void locate(uint64_t v, unsigned *row, unsigned *col)
{
    if (v < MC_HIST_SUB) {
        *row = 0;
        *col = (unsigned)v;
        return;
    }
    unsigned k = 63 - (unsigned)__builtin_clzll(v); /* highest set bit, >= 10 */
    unsigned shift = k - 9;                         /* keep 10 significant bits */
    *row = shift;
    *col = (unsigned)(v >> shift); /* in [512, 1024) */
    if (*row > MC_HIST_POW) {
        *row = MC_HIST_POW;
        *col = MC_HIST_SUB - 1;
    }
}

static uint64_t upper(unsigned row, unsigned col)
{
    if (row == 0) return col;
    return (((uint64_t)col + 1) << row) - 1;
}

void mc_hist_record(struct mc_hist *h, uint64_t us)
{
    unsigned r, c;
    locate(us, &r, &c);
    h->b[r][c]++;
    h->count++;
    h->sum_us += (double)us;
    if (us > h->max_us) h->max_us = us;
    if (us < h->min_us) h->min_us = us;
}

void mc_hist_merge(struct mc_hist *dst, const struct mc_hist *src)
{
    for (unsigned r = 0; r <= MC_HIST_POW; r++)
        for (unsigned c = 0; c < MC_HIST_SUB; c++)
            dst->b[r][c] += src->b[r][c];
    dst->count += src->count;
    dst->sum_us += src->sum_us;
    if (src->max_us > dst->max_us) dst->max_us = src->max_us;
    if (src->min_us < dst->min_us) dst->min_us = src->min_us;
}

uint64_t mc_hist_quantile(const struct mc_hist *h, double q)
{
    if (!h->count) return 0;
    if (q <= 0) return h->min_us;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.5);
    if (rank < 1) rank = 1;
    if (rank >= h->count) return h->max_us;
    uint64_t seen = 0;
    for (unsigned r = 0; r <= MC_HIST_POW; r++)
        for (unsigned c = 0; c < MC_HIST_SUB; c++) {
            seen += h->b[r][c];
            if (seen >= rank) {
                uint64_t v = upper(r, c);
                return v > h->max_us ? h->max_us : v;
            }
        }
    return h->max_us;
}
