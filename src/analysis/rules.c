/* rules.c - the rules of the findings that are more than a verdict
 * (rules.h). Each threshold is beside the rule it belongs to. */
#include "analysis/rules.h"

int mc_rule_fds_at_limit(const double *fds, uint32_t n, double limit)
{
    if (limit <= 0 || n < 4) return 0;
    return fds[n - 1] >= limit - 16 && fds[n - 1] - fds[0] >= 5;
}

/* New TCP connections made and closed again at a steady pace: no pooling.
 * With units of work, at least CHURN_MIN connections per unit; without, at
 * least CHURN_COUNT connections, at least CHURN_PER_MIN a minute, each
 * living on average less than a tenth of the run (what a pool keeps lives
 * for the run; how fast the program goes does not matter).
 *
 * The mean lifetime is Little's law, L = lambda W (Little 1961): the mean
 * number of connections open (L, TCP ESTABLISHED at each sample) divided by
 * the rate they are made at (lambda, connections over the run's time). */
#define CHURN_MIN     0.5
#define CHURN_PER_MIN 6.0
#define CHURN_COUNT   20

int mc_rule_churn(struct mc_churn *c)
{
    c->per_s = c->secs > 0 ? c->made / c->secs : 0;
    c->lifetime_s = c->per_s > 0 ? c->open_mean / c->per_s : 0;
    if (c->has_unit) return c->per_unit >= CHURN_MIN;
    return c->made >= CHURN_COUNT && c->per_s * 60 >= CHURN_PER_MIN &&
           c->lifetime_s <= c->secs / 10;
}

/* Much more free memory in the allocator than the program holds live (at
 * least 4 MiB, and more than the live heap): RSS stays up although nothing
 * leaks. */
#define RETENTION_MIN (4.0 * 1024 * 1024)

int mc_rule_retention(double alloc_free, double live_heap)
{
    return alloc_free >= RETENTION_MIN && alloc_free >= live_heap;
}
