/* python_snapshot.c - one Python snapshot, in C from start to end: the
 * census (python_census.c), the cycle garbage the program's collections
 * freed since the last one (python_garbage.c), what holds a type that
 * keeps growing (python_held.c), published into the mapping's type table.
 *
 * No bytecode runs and memcreep never collects, so the GIL never changes
 * hands during a snapshot and the program sees neither memcreep's
 * temporaries (gc.get_count) nor a collection of its (gc.get_stats).
 *
 * The types published are those worth following: the KEEP most numerous,
 * those with garbage, and every type published once, so that each keeps a
 * series (at most MC_SEEN). A type whose live count grew at three
 * snapshots running (and has at least 50 objects) is looked at at the next
 * snapshot: what holds its most recent object; up to MC_PY_CHAINS types
 * per snapshot (found in the same passes over the heap), the program's
 * types before builtins, then the largest growth, each type again after
 * ten snapshots. */
#include <string.h>

#include "internal.h"
#include "python_api.h"

#define TNAMES  8192 /* type names remembered */
#define KEEP    200
#define MC_SEEN 1000
#define STREAK  3
#define MIN_OBJ 50
#define RELOOK  10

struct tname {
    char name[MC_PY_NAME];
    long long live, prev, garbage;
    int64_t age[MC_AGE_EPOCHS]; /* at this snapshot, when it counted age */
    int present, was_present, streak, seen;
    uint64_t looked; /* snapshot number it was last looked at, 0 = never */
    char held[MC_PY_HELD];
};

static struct tname *tn; /* the library's own memory */
static uint32_t ntn, nseen;
static uint64_t nsnap;
static int want[MC_PY_CHAINS]; /* the types to look at, by index */
static int nwant;

static uint16_t *tindex; /* name hash -> index + 1, 2 * TNAMES slots */

/* The entry of a type name, added when new; NULL when TNAMES are known. */
static struct tname *name_entry(const char *name)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    for (uint32_t s = h & (2 * TNAMES - 1);; s = (s + 1) & (2 * TNAMES - 1)) {
        if (!tindex[s]) {
            if (ntn >= TNAMES) return NULL;
            struct tname *e = &tn[ntn];
            memset(e, 0, sizeof(*e));
            strncpy(e->name, name, MC_PY_NAME - 1);
            tindex[s] = (uint16_t)++ntn;
            return e;
        }
        if (!strncmp(tn[tindex[s] - 1].name, name, MC_PY_NAME - 1)) return &tn[tindex[s] - 1];
    }
}

static void see(struct tname *e)
{
    if (!e->seen && nseen < MC_SEEN) {
        e->seen = 1;
        nseen++;
    }
}

static void on_garbage(const char *name, long long n, void *arg)
{
    (void)arg;
    struct tname *e = name_entry(name);
    if (!e) return;
    e->garbage += n;
    see(e);
}

/* ---- the mapping's type table ---- */

static struct mc_shm_pytype *types(void)
{
    return (struct mc_shm_pytype *)((char *)mc_shm + mc_lay.off_py_types);
}

/* The table entry for a type name, added when new; NULL when full. Only
 * the bridge's thread writes the table. */
static struct mc_shm_pytype *entry_for(const char *name)
{
    struct mc_shm_pytype *t = types();
    uint64_t n = mc_shm->py_types_used;
    if (n > mc_lay.py_cap) n = mc_lay.py_cap; /* the program may write anything there */
    for (uint64_t i = 0; i < n; i++)
        if (!strncmp(t[i].name, name, MC_PY_NAME - 1)) return &t[i];
    if (n >= mc_lay.py_cap || mc_room_commit(&t[n], sizeof(t[n])) != 0) return NULL;
    strncpy(t[n].name, name, MC_PY_NAME - 1);
    t[n].name[MC_PY_NAME - 1] = 0;
    __atomic_store_n(&mc_shm->py_types_used, n + 1, __ATOMIC_RELEASE);
    return &t[n];
}

/* age: the age request this snapshot served (its types' age_bytes are
 * published with it), 0 for none. */
static void publish(long long total, uint64_t age)
{
    for (uint32_t i = 0; i < ntn; i++) {
        struct tname *e = &tn[i];
        struct mc_shm_pytype *s = e->seen ? entry_for(e->name) : NULL;
        if (!s) continue;
        __atomic_store_n(&s->live, e->live, __ATOMIC_RELAXED);
        if (age) memcpy(s->age_bytes, e->age, sizeof(s->age_bytes));
        if (e->garbage > 0) __atomic_fetch_add(&s->garbage, (uint64_t)e->garbage, __ATOMIC_RELAXED);
        e->garbage = 0;
        if (e->held[0] && strncmp(s->held, e->held, MC_PY_HELD - 1)) {
            size_t l = strnlen(e->held, MC_PY_HELD - 1);
            memcpy(s->held, e->held, l);
            s->held[l] = 0;
        }
    }
    if (total > 0) __atomic_fetch_add(&mc_shm->py_garbage, (uint64_t)total, __ATOMIC_RELAXED);
    if (age) __atomic_store_n(&mc_shm->py_age_done, age, __ATOMIC_RELEASE);
}

/* The KEEP most numerous present types are seen: a min-heap of indexes
 * by live count, its least at the top. */
static void keep_top(void)
{
    static uint32_t heap[KEEP];
    uint32_t h = 0;
    for (uint32_t i = 0; i < ntn; i++) {
        if (!tn[i].present) continue;
        uint32_t at;
        if (h < KEEP) {
            at = h++;
            while (at && tn[heap[(at - 1) / 2]].live > tn[i].live) {
                heap[at] = heap[(at - 1) / 2];
                at = (at - 1) / 2;
            }
            heap[at] = i;
            continue;
        }
        if (tn[i].live <= tn[heap[0]].live) continue;
        heap[0] = i;
        at = 0;
        for (;;) {
            uint32_t l = 2 * at + 1, r = l + 1, m = at;
            if (l < h && tn[heap[l]].live < tn[heap[m]].live) m = l;
            if (r < h && tn[heap[r]].live < tn[heap[m]].live) m = r;
            if (m == at) break;
            uint32_t x = heap[at];
            heap[at] = heap[m];
            heap[m] = x;
            at = m;
        }
    }
    for (uint32_t k = 0; k < h; k++)
        see(&tn[heap[k]]);
}

/* Whether type a ranks before type b for a look: the program's types
 * before builtins, then the larger growth. */
static int before(const struct tname *a, long long ga, const struct tname *b, long long gb)
{
    int oa = strchr(a->name, '.') != NULL, ob = strchr(b->name, '.') != NULL;
    return oa != ob ? oa > ob : ga > gb;
}

/* The next types to look at, from the growth streaks: the MC_PY_CHAINS
 * that rank first, in rank order. */
static void streaks(void)
{
    long long growth[MC_PY_CHAINS];
    nwant = 0;
    for (uint32_t i = 0; i < ntn; i++) {
        struct tname *e = &tn[i];
        if (!e->present) {
            e->streak = 0;
            continue;
        }
        e->streak = e->was_present && e->live > e->prev ? e->streak + 1 : 0;
        if (e->streak < STREAK || e->live < MIN_OBJ) continue;
        if (e->looked && nsnap - e->looked < RELOOK) continue;
        long long g = e->live - (e->was_present ? e->prev : 0);
        int at = nwant;
        while (at > 0 && before(e, g, &tn[want[at - 1]], growth[at - 1]))
            at--;
        if (at >= MC_PY_CHAINS) continue;
        int last = nwant < MC_PY_CHAINS ? nwant++ : MC_PY_CHAINS - 1;
        for (int k = last; k > at; k--) {
            want[k] = want[k - 1];
            growth[k] = growth[k - 1];
        }
        want[at] = (int)i;
        growth[at] = g;
    }
}

int mc_py_snapshot(void)
{
    if (!tn) tn = mc_sys_alloc(TNAMES * sizeof(*tn));
    if (!tindex) tindex = mc_sys_alloc(2 * TNAMES * sizeof(*tindex));
    if (!tn || !tindex) return -1;
    nsnap++;
    long long total = mc_py_garbage_take(on_garbage, NULL);
    /* memcreep started an allocation epoch since the last age counted:
     * this snapshot counts its types' age too (a table lookup an object). */
    uint64_t age = __atomic_load_n(&mc_shm->age_request, __ATOMIC_ACQUIRE);
    if (age == __atomic_load_n(&mc_shm->py_age_done, __ATOMIC_ACQUIRE)) age = 0;
    struct mc_py_census c;
    c.want_age = age != 0;
    if (mc_py_census_take(&c) != 0) {
        publish(total, 0);
        return -1;
    }
    for (uint32_t i = 0; i < ntn; i++) {
        tn[i].prev = tn[i].live;
        tn[i].was_present = tn[i].present;
        tn[i].live = 0;
        tn[i].present = 0;
        if (age) memset(tn[i].age, 0, sizeof(tn[i].age));
    }
    static int32_t of[16384]; /* census type -> name index */
    char name[MC_PY_NAME];
    for (uint32_t k = 0; k < c.ntypes && k < 16384; k++) {
        mc_py_type_name(c.types[k].type, name, sizeof(name));
        struct tname *e = name_entry(name);
        of[k] = e ? (int32_t)(e - tn) : -1;
        if (!e) continue;
        e->live += c.types[k].live;
        e->present = 1;
        for (int a = 0; age && a < MC_AGE_EPOCHS; a++)
            e->age[a] += c.types[k].age[a];
    }
    /* The types chosen at the last snapshot: what holds the most recent
     * object of each (the last one tracked, of all its types of that name),
     * all chains found in the same passes over the heap. */
    PyObject *objs[MC_PY_CHAINS];
    char *outs[MC_PY_CHAINS];
    int nobj = 0;
    for (int w = 0; w < nwant; w++) {
        long last = -1;
        for (uint32_t k = 0; k < c.ntypes && k < 16384; k++)
            if (of[k] == want[w] && c.types[k].last > last) last = c.types[k].last;
        if (last < 0) continue;
        objs[nobj] = mc_py.ListGetItem(c.objs, last);
        outs[nobj++] = tn[want[w]].held;
        tn[want[w]].looked = nsnap;
    }
    if (nobj) mc_py_held_by(&c, objs, nobj, outs);
    nwant = 0;
    mc_py_census_end(&c);
    streaks();
    keep_top();
    publish(total, age);
    return 0;
}

void mc_py_snapshot_forget(void)
{
    if (tindex) memset(tindex, 0, 2 * TNAMES * sizeof(*tindex));
    ntn = nseen = 0;
    nsnap = 0;
    nwant = 0;
    mc_py_garbage_reset();
}

void mc_py_snapshot_reset(void)
{
    for (uint32_t i = 0; i < ntn; i++)
        tn[i].garbage = 0;
    mc_py_garbage_reset();
}
