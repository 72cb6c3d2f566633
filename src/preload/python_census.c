/* python_census.c - every object the cycle collector tracks, counted by
 * type and split into reachable and unreachable, without collecting.
 *
 * A collection would free what is unreachable, so that only what is alive
 * gets counted; but it is the program's: it resets the generation counts
 * the program reads (gc.get_count), adds to its statistics, runs its
 * finalizers in memcreep's thread, and frees garbage sooner than Python
 * would. So the census finds reachability the way the collector does
 * (Modules/gcmodule.c, update_refs / subtract_refs / move_unreachable),
 * with the working counts in a table of its own instead of the objects'
 * headers, and changes nothing:
 *
 *   refs(o) = ob_refcnt(o) - 1 - #{edges p -> o : p tracked}
 *
 * (the 1 is the reference gc.get_objects' list holds). An object with
 * refs > 0 is referred to from outside the tracked objects (a frame, a C
 * global, a static type): it is a root. Everything reachable from a root
 * by tp_traverse is alive; the rest is cycle garbage waiting for the
 * collector (Python's own Include/internal/pycore_gc.h describes the same
 * partition).
 *
 * All of it runs in C with the GIL held: no bytecode runs, so no other
 * thread sees the list's extra references or memcreep's temporaries. The
 * working table (16 bytes a slot, slots at least 1.5 times the objects, a
 * stack of 4 bytes an object) is mapped from the kernel for the census'
 * duration and unmapped after: ~40 MB at 10^6 objects. */
#include <string.h>

#include "internal.h"
#include "python_api.h"

#define MARKED   INT32_MIN /* refs value of an object found reachable */
#define PREFETCH 8         /* objects ahead whose slot is fetched */
#define MAX_TYP  16384     /* distinct types counted (power of two) */

/* A slot: the object and its working count side by side, so that finding
 * an object and changing its count is one cache miss, not two (the
 * census is bound by these misses: the table is far larger than the
 * caches and an object's edges lead anywhere in it). */
struct slot {
    PyObject *key; /* open addressing by address; NULL = empty */
    int32_t refs;
};

struct work {
    struct slot *t;
    uint32_t *stack;
    uint32_t *at; /* the slot of the list's object i */
    uint32_t cap, mask, top;
    size_t size; /* of the one mapping holding all three */
    void *base;
};

static PyObject *gc_get_objects;

static inline uint32_t hash_ptr(const PyObject *p, uint32_t mask)
{
    uint64_t h = (uint64_t)(uintptr_t)p >> 4;
    h *= 0x9e3779b97f4a7c15ull;
    return (uint32_t)(h >> 32) & mask;
}

/* The slot of p, or UINT32_MAX when p is not a tracked object. */
static inline uint32_t find(const struct work *w, const PyObject *p)
{
    uint32_t s = hash_ptr(p, w->mask);
    for (;;) {
        if (w->t[s].key == p) return s;
        if (!w->t[s].key) return UINT32_MAX;
        s = (s + 1) & w->mask;
    }
}

static int visit_decref(PyObject *r, void *arg)
{
    struct work *w = arg;
    uint32_t s = r ? find(w, r) : UINT32_MAX;
    if (s != UINT32_MAX) w->t[s].refs--;
    return 0;
}

static int visit_mark(PyObject *r, void *arg)
{
    struct work *w = arg;
    uint32_t s = r ? find(w, r) : UINT32_MAX;
    if (s != UINT32_MAX && w->t[s].refs != MARKED) {
        w->t[s].refs = MARKED;
        w->stack[w->top++] = s;
    }
    return 0;
}

static void traverse(PyObject *o, mc_py_visit fn, void *arg)
{
    mc_py_traverse tr = MC_TP_TRAVERSE(MC_PY_TYPE(o));
    if (tr) tr(o, fn, arg);
}

static int work_open(struct work *w, long n)
{
    uint64_t cap = 1024;
    while (cap < (uint64_t)n + (uint64_t)n / 2)
        cap <<= 1;
    if (cap > (1ull << 31)) return -1;
    w->cap = (uint32_t)cap;
    w->mask = w->cap - 1;
    size_t tb = cap * sizeof(struct slot);
    size_t sb = (size_t)n * sizeof(uint32_t) + 64;
    w->size = tb + 2 * sb;
    w->base = mc_sys_alloc(w->size);
    if (!w->base) return -1;
    w->t = w->base;
    w->stack = (uint32_t *)((char *)w->base + tb);
    w->at = (uint32_t *)((char *)w->base + tb + sb);
    w->top = 0;
    return 0;
}

static PyObject *gc_isenabled, *gc_enable, *gc_disable;

static void call0(PyObject *fn)
{
    PyObject *r = mc_py.CallObject(fn, NULL);
    if (r) mc_py.DecRef(r);
}

/* The list of every tracked object (gc.get_objects()), or NULL. The list
 * is a tracked object: made while the program's gen0 count sits at its
 * threshold, it would start a collection in memcreep's thread that the
 * program's own next allocation would have started. So the collector is
 * off for that one call (no bytecode runs meanwhile: nobody sees it off),
 * and the collection, if due, comes at the program's next allocation, as
 * without memcreep. */
PyObject *mc_py_all_objects(void)
{
    if (!gc_get_objects) {
        PyObject *gc = mc_py.ImportModule("gc");
        if (!gc) return NULL;
        gc_get_objects = mc_py.GetAttrString(gc, "get_objects");
        gc_isenabled = mc_py.GetAttrString(gc, "isenabled");
        gc_enable = mc_py.GetAttrString(gc, "enable");
        gc_disable = mc_py.GetAttrString(gc, "disable");
        mc_py.DecRef(gc);
        if (!gc_get_objects || !gc_isenabled || !gc_enable || !gc_disable) {
            gc_get_objects = NULL;
            return NULL;
        }
    }
    PyObject *on = mc_py.CallObject(gc_isenabled, NULL);
    int was_on = on && on != mc_py.False;
    if (on) mc_py.DecRef(on);
    if (was_on) call0(gc_disable);
    PyObject *objs = mc_py.CallObject(gc_get_objects, NULL);
    if (was_on) call0(gc_enable);
    return objs;
}

/* Types in the order first met (the collector's order, oldest first),
 * from a table of the library's own memory, kept between censuses. */
static struct mc_py_census_type *type_slots(uint32_t **index)
{
    static struct mc_py_census_type *t;
    static uint32_t *ix;
    if (!t) t = mc_sys_alloc(MAX_TYP * sizeof(*t));
    if (!ix) ix = mc_sys_alloc(MAX_TYP * sizeof(*ix));
    if (!t || !ix) return NULL;
    memset(ix, 0xff, MAX_TYP * sizeof(*ix));
    *index = ix;
    return t;
}

/* The census type entry of ty, added when new; NULL past MAX_TYP types. */
static struct mc_py_census_type *type_of(struct mc_py_census *c, uint32_t *ix, PyObject *ty)
{
    uint32_t s = hash_ptr(ty, MAX_TYP - 1);
    for (uint32_t probes = 0; probes < MAX_TYP; probes++, s = (s + 1) & (MAX_TYP - 1)) {
        if (ix[s] == UINT32_MAX) {
            if (c->ntypes >= MAX_TYP / 2) return NULL;
            struct mc_py_census_type *e = &c->types[c->ntypes];
            e->type = ty;
            e->live = e->pending = 0;
            e->last = -1;
            memset(e->age, 0, sizeof(e->age));
            ix[s] = c->ntypes++;
            return e;
        }
        if (c->types[ix[s]].type == ty) return &c->types[ix[s]];
    }
    return NULL;
}

/* Allocation age by type, from the blocks the pointer table holds (a few:
 * CPython's object allocator is sampled) rather than from every object: a
 * GC-tracked object's block starts at its PyGC_Head, 16 bytes before it,
 * and 16 more for a type with a managed dict (its dict and values
 * pointers, CPython 3.11). A block is an object's when the census found a
 * reachable object just there whose type places its block there: two live
 * blocks cannot overlap, so no other object can pass both tests. */
struct age_walk {
    struct mc_py_census *c;
    uint32_t *ix;
    const struct work *w;
};

static void age_add(uintptr_t b, uint32_t slot, uint64_t tagged, uint32_t epoch, void *arg)
{
    (void)slot;
    struct age_walk *a = arg;
    /* Objects come from the object domain (pymalloc's, 512 bytes or less;
     * an object larger than that is rare): the malloc blocks are skipped
     * without a look-up. */
    if (!(tagged & MC_TAG_OBJ)) return;
    for (int managed = 0; managed < 2; managed++) {
        PyObject *o = (PyObject *)(b + 16 + 16 * (uintptr_t)managed);
        uint32_t s = find(a->w, o);
        if (s == UINT32_MAX || a->w->t[s].refs != MARKED) continue;
        PyObject *ty = MC_PY_TYPE(o);
        if (!(MC_TP_FLAGS(ty) & MC_TPF_MANAGED_DICT) != !managed) continue;
        struct mc_py_census_type *e = type_of(a->c, a->ix, ty);
        if (e) e->age[epoch] += (int64_t)mc_hooks_weight(tagged);
        return;
    }
}

int mc_py_census_take(struct mc_py_census *c)
{
    uint32_t *ix = NULL;
    int want_age = c->want_age;
    memset(c, 0, sizeof(*c));
    c->want_age = want_age;
    c->types = type_slots(&ix);
    if (!c->types) return -1;
    PyObject *objs = mc_py_all_objects();
    if (!objs) return -1;
    long n = mc_py.ListSize(objs);
    struct work w;
    if (n < 0 || work_open(&w, n) != 0) {
        mc_py.DecRef(objs);
        return -1;
    }
    /* 1. Every tracked object in the table, with its reference count less
     * the list's reference (clamped: more than 2^30 references is a root
     * whatever the tracked objects hold). */
    PyObject *const *item = MC_PY_LIST_ITEMS(objs);
    for (long i = 0; i < n; i++) {
        /* The slot a few objects on is fetched while this one is put in. */
        if (i + PREFETCH < n) __builtin_prefetch(&w.t[hash_ptr(item[i + PREFETCH], w.mask)], 1);
        PyObject *o = item[i];
        uint32_t s = hash_ptr(o, w.mask);
        while (w.t[s].key && w.t[s].key != o)
            s = (s + 1) & w.mask;
        w.t[s].key = o;
        intptr_t rc = MC_PY_REFCNT(o) - 1;
        w.t[s].refs = rc > (1 << 30) ? (1 << 30) : (int32_t)rc;
        w.at[i] = s;
    }
    /* 2. Less the references tracked objects hold to each other. */
    for (long i = 0; i < n; i++)
        traverse(item[i], visit_decref, &w);
    /* 3. What a root reaches is alive. Each object is pushed once (when
     * marked), so the stack holds at most n. */
    for (long i = 0; i < n; i++) {
        uint32_t s = w.at[i];
        if (w.t[s].refs <= 0) continue;
        w.t[s].refs = MARKED;
        w.stack[w.top++] = s;
        while (w.top) {
            uint32_t t = w.stack[--w.top];
            traverse(w.t[t].key, visit_mark, &w);
        }
    }
    /* 4. Counted by type, in the list's order (the last met is the most
     * recently tracked). */
    for (long i = 0; i < n; i++) {
        struct mc_py_census_type *e = type_of(c, ix, MC_PY_TYPE(item[i]));
        if (!e) continue;
        if (w.t[w.at[i]].refs == MARKED) {
            e->live++;
            e->last = i;
        } else {
            e->pending++;
        }
    }
    if (want_age) {
        struct age_walk a = {c, ix, &w};
        mc_ptr_census(age_add, &a);
    }
    mc_sys_free(w.base, w.size);
    c->objs = objs;
    c->n = n;
    return 0;
}

void mc_py_census_end(struct mc_py_census *c)
{
    if (c->objs) mc_py.DecRef(c->objs);
    c->objs = NULL;
    c->n = 0;
    c->ntypes = 0;
}

struct refs_of {
    PyObject *const *targets;
    int n;
    uint32_t found; /* bit j: the object refers to targets[j] */
};

static int visit_find(PyObject *r, void *arg)
{
    struct refs_of *f = arg;
    for (int j = 0; j < f->n; j++)
        if (r == f->targets[j]) f->found |= 1u << j;
    return 0;
}

/* One pass over the tracked objects for all targets at once: a pass costs
 * what gc.get_referrers costs, whatever the number of targets. */
void mc_py_referrers(const struct mc_py_census *c, PyObject *const *targets, int n,
                     PyObject *(*out)[MC_PY_REFS], int *counts)
{
    if (n > 32) n = 32;
    for (int j = 0; j < n; j++)
        counts[j] = 0;
    for (long i = 0; i < c->n; i++) {
        PyObject *o = mc_py.ListGetItem(c->objs, i);
        struct refs_of f = {targets, n, 0};
        traverse(o, visit_find, &f);
        for (int j = 0; f.found && j < n; j++)
            if ((f.found >> j & 1) && targets[j] && counts[j] < MC_PY_REFS) out[j][counts[j]++] = o;
    }
}
