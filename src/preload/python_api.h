/* python_api.h - the part of CPython's C API the bridge uses, looked up
 * with dlsym at start (the library never links libpython: it must load in
 * any process), and the few object layouts it reads directly.
 *
 * The layouts are those of CPython's public headers (object.h,
 * cpython/object.h), unchanged from 3.8 to 3.13 for the fields used here;
 * the one internal layout (3.11's inline instance values, used to name the
 * attribute that holds an object) is checked at start-up against a probe
 * object of the running interpreter and left unused when it differs. */
#ifndef MC_PYTHON_API_H
#define MC_PYTHON_API_H

#include <stddef.h>
#include <stdint.h>

typedef struct py_object PyObject;
typedef int (*mc_py_visit)(PyObject *, void *);
typedef int (*mc_py_traverse)(PyObject *, mc_py_visit, void *);
typedef int (*mc_py_inquiry)(PyObject *);
typedef void (*mc_py_destructor)(PyObject *);

struct mc_py_api {
    int (*IsInitialized)(void);
    int (*IsFinalizing)(void);
    int (*GILState_Ensure)(void);
    void (*GILState_Release)(int);
    PyObject *(*CompileString)(const char *, const char *, int);
    PyObject *(*EvalCode)(PyObject *, PyObject *, PyObject *);
    PyObject *(*DictNew)(void);
    int (*DictSetItemString)(PyObject *, const char *, PyObject *);
    PyObject *(*DictGetItemString)(PyObject *, const char *);
    PyObject *(*DictGetItem)(PyObject *, PyObject *);
    PyObject *(*UnicodeFromString)(const char *);
    int (*DictNext)(PyObject *, long *, PyObject **, PyObject **);
    PyObject *(*ImportModule)(const char *);
    PyObject *(*ImportGetModuleDict)(void);
    PyObject *(*ModuleGetDict)(PyObject *);
    const char *(*ModuleGetName)(PyObject *);
    PyObject *(*CallObject)(PyObject *, PyObject *);
    PyObject *(*CallFunction)(PyObject *, const char *, ...);
    PyObject *None, *False;
    PyObject *ModuleType, *SetType, *FrozenSetType, *FrameType, *CellType;
    long (*ListSize)(PyObject *);
    PyObject *(*ListGetItem)(PyObject *, long);
    int (*ListSetSlice)(PyObject *, long, long, PyObject *);
    int (*ListInsert)(PyObject *, long, PyObject *);
    PyObject *(*TupleGetItem)(PyObject *, long);
    const char *(*UnicodeAsUTF8)(PyObject *);
    long long (*LongAsLongLong)(PyObject *);
    double (*FloatAsDouble)(PyObject *);
    void (*DecRef)(PyObject *);
    void (*IncRef)(PyObject *);
    void (*ErrClear)(void);
    PyObject *(*GetAttrString)(PyObject *, const char *);
    int (*TypeIsSubtype)(PyObject *, PyObject *);
    PyObject *(*TypeGetQualName)(PyObject *); /* 3.11 on; NULL before */
    PyObject *(*ListNew)(long);
    int (*ListAppend)(PyObject *, PyObject *);
    long (*TupleSize)(PyObject *);
    PyObject *(*TupleNew)(long);
    int (*TupleSetItem)(PyObject *, long, PyObject *);
    int (*DictSetItem)(PyObject *, PyObject *, PyObject *);
    PyObject *(*LongFromLongLong)(long long);
    PyObject *(*CFunctionNewEx)(void *, PyObject *, PyObject *);
};

/* Filled by mc_py_load (python.c); read-only after. */
extern struct mc_py_api mc_py;

/* CPython's PyMethodDef, as its ABI lays it out. */
struct mc_py_method {
    const char *name;
    PyObject *(*fn)(PyObject *, PyObject *);
    int flags;
    const char *doc;
};
#define MC_METH_VARARGS 0x0001
#define MC_METH_O       0x0008

/* PyObject and PyTypeObject fields (object.h, cpython/object.h). */
#define MC_PY_REFCNT(o) (*(const intptr_t *)(o))
#define MC_PY_TYPE(o)   (*(PyObject *const *)((const char *)(o) + 8))
/* PyListObject.ob_item (cpython/listobject.h): the items of a list. */
#define MC_PY_LIST_ITEMS(o)  (*(PyObject *const *const *)((const char *)(o) + 24))
#define MC_TP_FIELD(t, T, o) (*(T *)((const char *)(t) + (o)))
#define MC_TP_NAME(t)        MC_TP_FIELD(t, const char *, 24)
#define MC_TP_FLAGS(t)       MC_TP_FIELD(t, unsigned long, 168)
#define MC_TP_TRAVERSE(t)    MC_TP_FIELD(t, mc_py_traverse, 184)
#define MC_TP_CLEAR(t)       MC_TP_FIELD(t, mc_py_inquiry, 192)
#define MC_TP_DICT(t)        MC_TP_FIELD(t, PyObject *, 264)
#define MC_TP_DICTOFFSET(t)  MC_TP_FIELD(t, intptr_t, 288)
#define MC_TP_DEL(t)         MC_TP_FIELD(t, mc_py_destructor, 376)
#define MC_HT_CACHED_KEYS(t) MC_TP_FIELD(t, const char *, 872)

#define MC_TPF_MANAGED_DICT (1ul << 4)
#define MC_TPF_HEAPTYPE     (1ul << 9)
#define MC_TPF_LIST         (1ul << 25)
#define MC_TPF_TUPLE        (1ul << 26)
#define MC_TPF_UNICODE      (1ul << 28)
#define MC_TPF_DICT         (1ul << 29)

/* ---- python_census.c: live objects by type, without a collection ---- */

/* One type met by the census, with how many of its objects are reachable
 * (live) and how many only wait for the cycle collector (pending). */
struct mc_py_census_type {
    PyObject *type; /* borrowed, valid until mc_py_census_end */
    long long live, pending;
    long last; /* index of its most recent reachable object, or -1 */
    /* With want_age: its reachable objects' bytes by allocation epoch,
     * from those the pointer table holds (sampled, so weighted). */
    int64_t age[MC_AGE_EPOCHS];
};

struct mc_py_census {
    PyObject *objs; /* gc.get_objects(), owned until mc_py_census_end */
    long n;
    struct mc_py_census_type *types;
    uint32_t ntypes;
    int want_age; /* set by the caller: also count age (a table lookup an object) */
};

/* Counts every tracked object by type and by whether it is reachable, as
 * a full collection would find it, without collecting. GIL held. Returns
 * 0, or -1 (nothing to free) when Python or memory refuses. */
int mc_py_census_take(struct mc_py_census *c);
/* gc.get_objects(), taken with the collector off for the call (so that
 * the list's allocation cannot start a collection in memcreep's thread).
 * New reference or NULL. GIL held. */
PyObject *mc_py_all_objects(void);
/* Drops the census' references. GIL held. */
void mc_py_census_end(struct mc_py_census *c);
#define MC_PY_REFS 64 /* referrers kept per target */
/* For each of n targets (at most 32; NULL ones are skipped), fills out[j]
 * with up to MC_PY_REFS tracked objects that refer to targets[j] (the
 * census' own list excluded), in the collector's order, and counts[j]
 * with how many. */
void mc_py_referrers(const struct mc_py_census *c, PyObject *const *targets, int n,
                     PyObject *(*out)[MC_PY_REFS], int *counts);

/* ---- python_held.c: what holds an object ---- */

/* Checks the inline-attributes layout against the running interpreter;
 * probe is an object whose attribute mc_probe holds value. GIL held. */
void mc_py_held_check(PyObject *probe, PyObject *value);
#define MC_PY_CHAINS 8 /* objects whose holders are looked for at once */
/* Writes into outs[j] (MC_PY_HELD bytes each) the chain of holders of
 * objs[j], outermost first: "__main__.Poller.seen > list", for n objects
 * (at most MC_PY_CHAINS). GIL held, census alive. */
void mc_py_held_by(const struct mc_py_census *c, PyObject *const *objs, int n, char **outs);

/* ---- python_types.c: type names ---- */

/* Writes a type's module.qualname (builtins without module) into out. */
void mc_py_type_name(PyObject *type, char *out, size_t size);

/* ---- python_garbage.c: cycle garbage by type ---- */

/* Installs the collector callback that counts, by type, what each of the
 * program's collections frees. GIL held. Returns 0 or -1. */
int mc_py_garbage_start(void);
/* Calls fn for each type name with the objects the collector freed since
 * the last call, then starts counting again; returns the total. GIL held. */
long long mc_py_garbage_take(void (*fn)(const char *name, long long n, void *arg), void *arg);
/* Forgets what the parent counted (in a forked child). */
void mc_py_garbage_reset(void);
/* For a detach (GIL held): takes the collector callback out of
 * gc.callbacks, and the allocator wrappers out of the domains (where they
 * are still the first), so the interpreter is as it was. */
void mc_py_garbage_stop(void);
/* Forgets every type seen (an attach after a detach: a new mapping). */
void mc_py_snapshot_forget(void);
void mc_py_alloc_stop(void);

/* ---- python_frames.c ---- */

/* Checks the frame layout on the probe function of the bridge's code
 * (its globals) and, when it holds, lets the hooks read frames. GIL held. */
void mc_py_frames_check(PyObject *globals);

/* ---- python_alloc.c: the mem and object domains ---- */

/* Puts memcreep in front of CPython's mem and object allocators. GIL
 * held. Returns 1 when it is, 0 when MEMCREEP_PY_SAMPLE_BYTES=0 said not
 * to, -1 when the interpreter has no PyMem_SetAllocator. */
int mc_py_alloc_start(void);

/* ---- python_units.c: --unit MODULE:QUALNAME ---- */

/* Reads MEMCREEP_PY_UNIT (at start; no Python call). */
void mc_py_units_init(void);
/* 1 when --unit was given and can be counted. */
int mc_py_units_wanted(void);
/* Finds the function once its module is imported and gives every thread
 * the profile function that counts its returns. GIL held. */
void mc_py_units_poll(void);

/* ---- python_snapshot.c: one snapshot, published ---- */

/* Takes a snapshot and publishes it in the mapping. GIL held. Returns 0,
 * or -1 when the census could not be taken (garbage is still published). */
int mc_py_snapshot(void);
/* Forgets the parent's counts and streaks (in a forked child). */
void mc_py_snapshot_reset(void);

#endif
