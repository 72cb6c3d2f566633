/* age_census.c - allocation epochs and the censuses of allocation age.
 *
 * Every block the library records carries the epoch it was made in (4 bits
 * in its pointer table entry). memcreep decides the epochs: a load round
 * each when it drives the load, else slices of the run. As each epoch
 * starts, every process is asked for a census (preload/rest.c): what each
 * stack still holds from every earlier epoch. Row k of a stack's census
 * matrix is that census; the column of epoch e, read down the rows, is how
 * the blocks made in e lived on. analysis/age.c turns it into survival. */
#include <string.h>

#include "analysis/collector.h"
#include "common/util.h"

#define FIRST_SLICES 4 /* unknown length: 1-s slices, then doubling */

void mc_age_schedule(struct mc_collector *c, int by_round, double run_s)
{
    c->age_by_round = by_round;
    c->age_doubling = !by_round && !(run_s > 0);
    c->age_slice = by_round ? 0 : run_s > 0 ? run_s / 12 : 1;
    if (c->age_slice > 0 && c->age_slice < 0.1) c->age_slice = 0.1;
    c->age_next = c->age_slice > 0 ? mc_now() - c->t0 + c->age_slice : 0;
}

/* Copies the census the process served into row age_rows of every stack
 * that has a series now. */
static void harvest(struct mc_proc *p)
{
    int row = p->age_rows;
    if (row >= MC_AGE_ROWS) return;
    for (uint32_t s = 0; s < p->stk_cap; s++) {
        struct mc_stack_series *ss = p->stk[s];
        const struct mc_shm_stack_ext *x = ss ? mc_map_stack_ext(&p->map, s) : NULL;
        if (!x) continue;
        for (int e = 0; e < MC_AGE_EPOCHS; e++)
            ss->age[row][e] = __atomic_load_n(&x->age_bytes[e], __ATOMIC_RELAXED);
        ss->age_seen |= 1u << row;
    }
    p->age_rows++;
    p->age_ticket = 0;
}

static int python_active(const struct mc_proc *p)
{
    return p->has_map && p->py_cap &&
           __atomic_load_n(&p->map.h->py_state, __ATOMIC_ACQUIRE) == MC_PY_ACTIVE;
}

/* Copies the Python types' age the last snapshot published into row
 * py_age_rows of every type that has a series. */
static void harvest_python(struct mc_collector *c, struct mc_proc *p)
{
    int row = p->py_age_rows;
    p->py_age_ticket = 0;
    if (row >= MC_AGE_ROWS) return;
    uint64_t nt;
    const struct mc_shm_pytype *ty = mc_map_pytypes(&p->map, &nt);
    for (uint64_t i = 0; i < nt && i < p->py_cap; i++) {
        struct mc_py_series *ps = p->py[i];
        if (!ps) continue;
        for (int e = 0; e < MC_AGE_EPOCHS; e++)
            ps->age[row][e] = __atomic_load_n(&ty[i].age_bytes[e], __ATOMIC_RELAXED);
        ps->age_seen |= 1u << row;
    }
    p->py_age_epoch[row] = p->py_age_want;
    p->py_age_t[row] = mc_now() - c->t0;
    p->py_age_rows++;
}

static int python_served(const struct mc_proc *p)
{
    return p->py_age_ticket > 0 && (int64_t)mc_map_load(&p->map.h->py_age_done) >= p->py_age_ticket;
}

/* Asks one process for a census as epoch starts; the row's time is that
 * of the request. */
static void request(struct mc_collector *c, struct mc_proc *p, uint32_t epoch)
{
    if (!p->has_map || p->end != MC_END_RUNNING || p->age_rows >= MC_AGE_ROWS) return;
    if (!mc_map_load32(&p->map.h->rest_running)) return;
    /* One census at a time: an unread one is read first if it is done,
     * else this request waits for the next epoch. */
    if (p->age_ticket > 0) {
        if (!mc_map_age_done(&p->map, p->age_ticket)) return;
        harvest(p);
        if (p->age_rows >= MC_AGE_ROWS) return;
    }
    int64_t t = mc_map_request_age(p->map_path, &p->map, epoch);
    if (t <= 0) return;
    p->age_ticket = t;
    /* Its Python types count their age at the next snapshot: a request not
     * served yet is replaced by this one. */
    if (python_active(p)) {
        if (python_served(p)) harvest_python(c, p);
        p->py_age_ticket = t;
        p->py_age_want = epoch;
    }
    p->age_epoch[p->age_rows] = epoch;
    p->age_t[p->age_rows] = mc_now() - c->t0;
}

void mc_age_next_epoch(struct mc_collector *c)
{
    if (c->age_epoch + 1 >= MC_AGE_EPOCHS) return;
    c->age_epoch++;
    for (size_t i = 0; i < c->nprocs; i++)
        request(c, c->procs[i], c->age_epoch);
}

void mc_age_tick(struct mc_collector *c)
{
    for (size_t i = 0; i < c->nprocs; i++) {
        struct mc_proc *p = c->procs[i];
        if (p->age_ticket > 0 && mc_map_age_done(&p->map, p->age_ticket)) harvest(p);
        if (python_served(p)) harvest_python(c, p);
    }
    if (c->age_by_round || !(c->age_slice > 0) || c->frozen) return;
    double now = mc_now() - c->t0;
    if (now < c->age_next) return;
    mc_age_next_epoch(c);
    if (c->age_doubling && c->age_epoch >= FIRST_SLICES) c->age_slice *= 2;
    c->age_next = now + c->age_slice;
}

void mc_age_final(struct mc_collector *c)
{
    for (size_t i = 0; i < c->nprocs; i++) {
        struct mc_proc *p = c->procs[i];
        request(c, p, c->age_epoch);
        /* A snapshot of its own, for the Python types' last age row. */
        if (p->py_age_ticket > 0) mc_map_request_py(p->map_path, &p->map);
    }
    double until = mc_now() + 2;
    for (;;) {
        int pending = 0;
        for (size_t i = 0; i < c->nprocs; i++) {
            struct mc_proc *p = c->procs[i];
            if (p->age_ticket > 0) {
                if (mc_map_age_done(&p->map, p->age_ticket))
                    harvest(p);
                else
                    pending++;
            }
            if (p->py_age_ticket > 0) {
                if (python_served(p))
                    harvest_python(c, p);
                else if (python_active(p) && mc_proc_alive(p->pid))
                    pending++;
            }
        }
        if (!pending || mc_now() >= until) break;
        mc_sleep(0.005);
    }
}
