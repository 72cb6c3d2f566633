/* age.c - survival of a stack's allocation epochs, and the rule that uses
 * it: a leak keeps every epoch's blocks alive while new ones arrive; a
 * cache, a pool or a window of recent requests lets old epochs die.
 *
 * For epoch e, its close row is the first row taken after e ended, and its
 * settled row the one after that: by then what e made for work still in
 * flight as it closed (buffers of the requests running then) is gone, and
 * what is left is what the program kept. Epochs whose settled row lies at
 * least two rows before the last one are old: they had at least two more
 * epochs to be freed. Their survival is
 *
 *     S = sum over old e of bytes[last][e] / sum over old e of bytes[settled(e)][e],
 *
 * a ratio of byte sums (not a mean of ratios), so an epoch that held little
 * weighs little. A leak gives S = 1 (nothing old is freed); a cache that
 * evicts, S near 0 once its entries have turned over. */
#include <string.h>

#include "analysis/age.h"

/* The first row after row `from` that is known and was taken after epoch e
 * closed; -1 when there is none. */
static int row_after(const struct mc_age_rows *r, int from, uint32_t e)
{
    for (int k = from + 1; k < r->n; k++)
        if (r->epoch[k] > e && (r->seen >> k & 1)) return k;
    return -1;
}

int mc_age_measure(const struct mc_age_rows *r, struct mc_age *a)
{
    memset(a, 0, sizeof(*a));
    int last = r->n - 1;
    if (last < 2 || !(r->seen >> last & 1)) return 0;
    double then = 0, now = 0, total = 0;
    int youngest_close = -1;
    for (uint32_t e = 0; e < MC_AGE_EPOCHS; e++) {
        total += (double)r->bytes[last][e];
        int close = row_after(r, -1, e);
        int settled = close >= 0 ? row_after(r, close, e) : -1;
        if (settled < 0 || settled > last - 2) continue;
        then += (double)r->bytes[settled][e];
        now += (double)r->bytes[last][e];
        a->old_epochs++;
        if (close > youngest_close) youngest_close = close;
    }
    a->settled = then;
    a->now = now;
    a->survival = then > 0 ? now / then : 0;
    a->old_share = total > 0 ? now / total : 0;
    if (youngest_close >= 0) {
        a->older_s = r->t[last] - r->t[youngest_close];
        a->older_epochs = (int)r->epoch[last] - (int)r->epoch[youngest_close];
    }
    a->judged = a->old_epochs >= 2 && then >= MC_AGE_MIN_BYTES;
    return a->judged;
}

enum mc_verdict mc_age_verdict(enum mc_verdict v, int judged, double survival)
{
    if (v == MC_V_CREEP && judged && survival < MC_AGE_MIN_SURVIVAL) return MC_V_PLATEAU;
    return v;
}
