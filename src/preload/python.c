/* python.c - the bridge to CPython: object counts and cycle garbage by
 * type, taken from inside a Python process with nothing installed into it.
 *
 * When the program exports CPython's C API (the python3 executable does),
 * the library starts one thread of its own (python_code.c holds the Python
 * code it runs). It never runs Python inside an
 * allocation hook: when memcreep asks for a snapshot (py_request in the
 * mapping), the thread takes the GIL with PyGILState_Ensure, like any
 * thread calling into Python, and runs a small function compiled once
 * (SNAPSHOT_SRC below) that
 *   - runs a full collection, so what is counted is truly alive (not
 *     while the program keeps the collector off: its choice);
 *   - counts the objects the collector freed since the last snapshot (its
 *     own statistics, automatic collections included), by type: cycle
 *     garbage, what makes memory climb between collections even when it
 *     ends up flat (seed 000's Response <-> BoundSyncStream). The types
 *     come from the snapshot's own collection, run with gc.DEBUG_SAVEALL
 *     set only for its duration, and the garbage it kept is freed before
 *     the GIL is let go: the program never sees the flag nor memcreep's
 *     objects in gc.garbage, and its garbage lives no longer than it would.
 *     A program that set DEBUG_SAVEALL itself is left alone;
 *   - counts GC-tracked objects by type (module.qualname), and for a type
 *     that keeps growing, names what holds a recent object of it;
 *   - now and then (--py-trace), runs tracemalloc for two short phases and
 *     adds up which Python lines grew from the first to the second: the
 *     lines where what keeps growing is allocated. tracemalloc costs ~9x
 *     while it runs, so it runs 2 s per period (60 s by default).
 * The results go to the mapping's type table; the API is looked up with
 * dlsym, so any CPython 3 with the stable C API works, with pymalloc on.
 *
 * Waits are bounded where the interpreter allows it: nothing is attempted
 * once the interpreter finalizes (the state turns MC_PY_OFF), and memcreep
 * stops waiting for a snapshot after its own deadline and counts it late.
 * PyGILState_Ensure itself cannot time out: while another thread holds the
 * GIL inside a long C call, the snapshot waits for it, like any thread. */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

typedef struct py_object PyObject;

static struct {
    int (*IsInitialized)(void);
    int (*IsFinalizing)(void);
    int (*GILState_Ensure)(void);
    void (*GILState_Release)(int);
    PyObject *(*CompileString)(const char *, const char *, int);
    PyObject *(*EvalCode)(PyObject *, PyObject *, PyObject *);
    PyObject *(*DictNew)(void);
    int (*DictSetItemString)(PyObject *, const char *, PyObject *);
    PyObject *(*DictGetItemString)(PyObject *, const char *);
    PyObject *(*ImportModule)(const char *);
    PyObject *(*CallObject)(PyObject *, PyObject *);
    PyObject *(*CallFunction)(PyObject *, const char *, ...);
    PyObject *None;
    long (*ListSize)(PyObject *);
    PyObject *(*ListGetItem)(PyObject *, long);
    PyObject *(*TupleGetItem)(PyObject *, long);
    const char *(*UnicodeAsUTF8)(PyObject *);
    long long (*LongAsLongLong)(PyObject *);
    double (*FloatAsDouble)(PyObject *);
    void (*DecRef)(PyObject *);
    void (*IncRef)(PyObject *);
    void (*ErrClear)(void);
    PyObject *(*GetAttrString)(PyObject *, const char *);
    PyObject *(*Type)(PyObject *);
    int (*TypeIsSubtype)(PyObject *, PyObject *);
    PyObject *(*ListNew)(long);
    int (*ListAppend)(PyObject *, PyObject *);
    long (*TupleSize)(PyObject *);
    PyObject *(*TupleNew)(long);
    int (*TupleSetItem)(PyObject *, long, PyObject *);
    int (*DictSetItem)(PyObject *, PyObject *, PyObject *);
    PyObject *(*LongFromLongLong)(long long);
    PyObject *(*CFunctionNewEx)(void *, PyObject *, PyObject *);
} api;

#define PY_FILE_INPUT  257            /* Py_file_input */
#define RELEASE_NS     10000000000ull /* no request for 10 s: tracing stops */
#define POLL_NS        10000000L      /* the thread looks for requests every 10 ms */
#define TICK_NS        250000000ull   /* line tracing looks at its clock 4 times a second */
#define CHILD_DELAY_NS 200000000ull   /* a forked child's first snapshot waits */

static PyObject *globals;
static PyObject *fn_snapshot, *fn_release, *fn_tick;
static int have_api;
static uint64_t started_ns;

static int load_api(void)
{
#define LOAD(field, name)                                                                          \
    if (!(*(void **)&api.field = dlsym(RTLD_DEFAULT, name))) return 0
    LOAD(IsInitialized, "Py_IsInitialized");
    LOAD(GILState_Ensure, "PyGILState_Ensure");
    LOAD(GILState_Release, "PyGILState_Release");
    LOAD(CompileString, "Py_CompileString");
    LOAD(EvalCode, "PyEval_EvalCode");
    LOAD(DictNew, "PyDict_New");
    LOAD(DictSetItemString, "PyDict_SetItemString");
    LOAD(DictGetItemString, "PyDict_GetItemString");
    LOAD(ImportModule, "PyImport_ImportModule");
    LOAD(CallObject, "PyObject_CallObject");
    LOAD(CallFunction, "PyObject_CallFunction");
    LOAD(None, "_Py_NoneStruct");
    LOAD(ListSize, "PyList_Size");
    LOAD(ListGetItem, "PyList_GetItem");
    LOAD(TupleGetItem, "PyTuple_GetItem");
    LOAD(UnicodeAsUTF8, "PyUnicode_AsUTF8");
    LOAD(LongAsLongLong, "PyLong_AsLongLong");
    LOAD(FloatAsDouble, "PyFloat_AsDouble");
    LOAD(DecRef, "Py_DecRef");
    LOAD(IncRef, "Py_IncRef");
    LOAD(ErrClear, "PyErr_Clear");
    LOAD(GetAttrString, "PyObject_GetAttrString");
    LOAD(Type, "PyObject_Type");
    LOAD(TypeIsSubtype, "PyType_IsSubtype");
    LOAD(ListNew, "PyList_New");
    LOAD(ListAppend, "PyList_Append");
    LOAD(TupleSize, "PyTuple_Size");
    LOAD(TupleNew, "PyTuple_New");
    LOAD(TupleSetItem, "PyTuple_SetItem");
    LOAD(DictSetItem, "PyDict_SetItem");
    LOAD(LongFromLongLong, "PyLong_FromLongLong");
    LOAD(CFunctionNewEx, "PyCFunction_NewEx");
#undef LOAD
    /* Py_IsFinalizing is public from 3.13; before, _Py_IsFinalizing. */
    *(void **)&api.IsFinalizing = dlsym(RTLD_DEFAULT, "Py_IsFinalizing");
    if (!api.IsFinalizing) *(void **)&api.IsFinalizing = dlsym(RTLD_DEFAULT, "_Py_IsFinalizing");
    return 1;
}

/* ---- the census: every object, in C ----
 *
 * gc.get_objects() returns a list holding a reference to every object the
 * collector tracks. Held while Python code runs (a for loop, Counter's
 * update), it lets another thread run in between with its objects' reference
 * counts raised by one: a tuple being grown with _PyTuple_Resize then fails
 * ("bad argument to internal function", seen in CPython's test_weakref under
 * an earlier memcreep). So the list is walked here, in C, where no bytecode
 * runs and the GIL cannot change hands, and dropped before returning: what
 * the Python code gets holds types, a sample object per wanted type, and the
 * objects of the classes it asked for. */

#define CENSUS_SLOTS 16384 /* distinct types counted at once (power of two) */

struct census_slot {
    PyObject *type; /* borrowed while the list lives; NULL = empty */
    long long n;
};

static PyObject *gc_get_objects;

/* A table from the library's own memory (not the program's heap), and
 * the order its types were first met in (the collector's order, oldest
 * objects first, as Counter over the list would give them). */
static struct census_slot *census_table(uint32_t **order)
{
    static struct census_slot *t;
    static uint32_t *o;
    if (!t) t = mc_sys_alloc(CENSUS_SLOTS * sizeof(*t));
    if (!o) o = mc_sys_alloc(CENSUS_SLOTS * sizeof(*o));
    if (!t || !o) return NULL;
    memset(t, 0, CENSUS_SLOTS * sizeof(*t));
    *order = o;
    return t;
}

/* The list of every tracked object, or NULL. */
static PyObject *all_objects(void)
{
    if (!gc_get_objects) {
        PyObject *gc = api.ImportModule("gc");
        if (!gc) return NULL;
        gc_get_objects = api.GetAttrString(gc, "get_objects");
        api.DecRef(gc);
        if (!gc_get_objects) return NULL;
    }
    return api.CallObject(gc_get_objects, NULL);
}

/* _census(wanted): (counts, samples). counts maps each type to its number
 * of tracked objects; samples maps each type of the tuple wanted to its
 * most recently tracked object (the end of the collector's lists). */
static PyObject *census(PyObject *self, PyObject *wanted)
{
    (void)self;
    uint32_t *order = NULL, ntypes = 0;
    struct census_slot *t = census_table(&order);
    PyObject *objs = t ? all_objects() : NULL;
    if (!objs) return NULL;
    long nw = wanted ? api.TupleSize(wanted) : 0;
    if (nw < 0) nw = 0;
    if (nw > 64) nw = 64;
    PyObject *want[64], *got[64];
    for (long k = 0; k < nw; k++) {
        want[k] = api.TupleGetItem(wanted, k);
        got[k] = NULL;
    }
    long n = api.ListSize(objs);
    for (long i = 0; i < n; i++) {
        PyObject *o = api.ListGetItem(objs, i);
        PyObject *ty = api.Type(o); /* new reference; the list keeps it alive */
        api.DecRef(ty);
        uintptr_t h = (uintptr_t)ty >> 4;
        uint32_t s = (uint32_t)(h ^ (h >> 15)) & (CENSUS_SLOTS - 1), probes = 0;
        while (t[s].type && t[s].type != ty && probes++ < CENSUS_SLOTS)
            s = (s + 1) & (CENSUS_SLOTS - 1);
        if (!t[s].type) {
            t[s].type = ty;
            order[ntypes++] = s;
        }
        if (t[s].type == ty) t[s].n++; /* else: more types than slots, not counted */
        for (long k = 0; k < nw; k++)  /* the last one met is the most recent */
            if (ty == want[k]) got[k] = o;
    }
    /* Types and samples outlive the list's references: kept for the dicts
     * below, then the list goes. */
    for (uint32_t k = 0; k < ntypes; k++)
        api.IncRef(t[order[k]].type);
    for (long k = 0; k < nw; k++)
        if (got[k]) api.IncRef(got[k]);
    api.DecRef(objs);
    PyObject *counts = api.DictNew(), *samples = api.DictNew(), *res = api.TupleNew(2);
    for (uint32_t k = 0; k < ntypes; k++) {
        struct census_slot *e = &t[order[k]];
        PyObject *v = counts ? api.LongFromLongLong(e->n) : NULL;
        if (v) {
            api.DictSetItem(counts, e->type, v);
            api.DecRef(v);
        }
        api.DecRef(e->type);
    }
    for (long k = 0; k < nw; k++)
        if (got[k]) {
            if (samples) api.DictSetItem(samples, want[k], got[k]);
            api.DecRef(got[k]);
        }
    if (!counts || !samples || !res) {
        if (counts) api.DecRef(counts);
        if (samples) api.DecRef(samples);
        if (res) api.DecRef(res);
        return NULL;
    }
    api.TupleSetItem(res, 0, counts); /* steals */
    api.TupleSetItem(res, 1, samples);
    return res;
}

/* _objects_of(cls): a list of the tracked objects whose type is cls or a
 * subclass of it (open sockets, for the line tracing). */
static PyObject *objects_of(PyObject *self, PyObject *cls)
{
    (void)self;
    PyObject *objs = all_objects(), *out = api.ListNew(0);
    if (!objs || !out) {
        if (objs) api.DecRef(objs);
        if (out) api.DecRef(out);
        return NULL;
    }
    long n = api.ListSize(objs);
    for (long i = 0; i < n; i++) {
        PyObject *o = api.ListGetItem(objs, i);
        PyObject *ty = api.Type(o);
        if (api.TypeIsSubtype(ty, cls)) api.ListAppend(out, o);
        api.DecRef(ty);
    }
    api.DecRef(objs);
    return out;
}

/* CPython's PyMethodDef, as its ABI lays it out. */
struct method_def {
    const char *name;
    PyObject *(*fn)(PyObject *, PyObject *);
    int flags;
    const char *doc;
};
#define METH_O 0x0008

static struct method_def census_def = {"_census", census, METH_O, NULL};
static struct method_def objects_of_def = {"_objects_of", objects_of, METH_O, NULL};

/* Compiles the snapshot code into a private namespace. GIL held. */
static int setup(void)
{
    if (fn_snapshot) return 0;
    PyObject *g = api.DictNew();
    PyObject *b = api.ImportModule("builtins");
    if (!g || !b || api.DictSetItemString(g, "__builtins__", b) != 0) goto fail;
    PyObject *fc = api.CFunctionNewEx(&census_def, NULL, NULL);
    PyObject *fo = api.CFunctionNewEx(&objects_of_def, NULL, NULL);
    int bad = !fc || !fo || api.DictSetItemString(g, "_census", fc) != 0 ||
              api.DictSetItemString(g, "_objects_of", fo) != 0;
    if (fc) api.DecRef(fc);
    if (fo) api.DecRef(fo);
    if (bad) goto fail;
    api.DecRef(b);
    b = NULL;
    PyObject *code = api.CompileString(mc_python_snapshot_src, "<memcreep>", PY_FILE_INPUT);
    if (!code) goto fail;
    PyObject *r = api.EvalCode(code, g, g);
    api.DecRef(code);
    if (!r) goto fail;
    api.DecRef(r);
    fn_snapshot = api.DictGetItemString(g, "_snapshot"); /* borrowed: g lives on */
    fn_release = api.DictGetItemString(g, "_release");
    fn_tick = api.DictGetItemString(g, "_trace_tick");
    if (!fn_snapshot || !fn_release || !fn_tick) goto fail;
    globals = g;
    return 0;
fail:
    api.ErrClear();
    if (b) api.DecRef(b);
    if (g) api.DecRef(g);
    fn_snapshot = fn_release = fn_tick = NULL;
    return -1;
}

static struct mc_shm_pytype *types(void)
{
    return (struct mc_shm_pytype *)((char *)mc_shm + mc_lay.off_py_types);
}

/* The table entry for a type name, added when new; NULL when full. Only
 * this thread writes the table. */
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

/* Adds rows of (where, bytes, count) -- or (where, count) when !bytes --
 * to a lines table, entries found or added by where. GIL held. */
static void add_rows(PyObject *rows, struct mc_shm_pyline *t, uint64_t *used_p, uint64_t cap,
                     int bytes)
{
    long n = rows ? api.ListSize(rows) : -1;
    for (long i = 0; i < n; i++) {
        PyObject *row = api.ListGetItem(rows, i);
        PyObject *where = row ? api.TupleGetItem(row, 0) : NULL;
        const char *s = where ? api.UnicodeAsUTF8(where) : NULL;
        if (!s) continue;
        uint64_t used = *used_p < cap ? *used_p : cap, k = 0;
        while (k < used && strncmp(t[k].where, s, MC_PY_WHERE - 1))
            k++;
        if (k == used) {
            if (used >= cap || mc_room_commit(&t[k], sizeof(t[k])) != 0) continue;
            strncpy(t[k].where, s, MC_PY_WHERE - 1);
            t[k].where[MC_PY_WHERE - 1] = 0;
            __atomic_store_n(used_p, used + 1, __ATOMIC_RELEASE);
        }
        if (bytes)
            __atomic_fetch_add(&t[k].bytes, api.LongAsLongLong(api.TupleGetItem(row, 1)),
                               __ATOMIC_RELAXED);
        __atomic_fetch_add(&t[k].count, api.LongAsLongLong(api.TupleGetItem(row, bytes ? 2 : 1)),
                           __ATOMIC_RELAXED);
    }
}

/* Adds a tracing window's lines and sockets to their tables. GIL held. */
static void publish_lines(PyObject *w)
{
    char *base = (char *)mc_shm;
    add_rows(api.TupleGetItem(w, 0), (struct mc_shm_pyline *)(base + mc_lay.off_py_lines),
             &mc_shm->py_lines_used, mc_lay.py_lines_cap, 1);
    add_rows(api.TupleGetItem(w, 3), (struct mc_shm_pyline *)(base + mc_lay.off_py_socks),
             &mc_shm->py_socks_used, mc_lay.py_socks_cap, 0);
    long long work = api.LongAsLongLong(api.TupleGetItem(w, 1));
    PyObject *secs = api.TupleGetItem(w, 2);
    double s = secs ? api.FloatAsDouble(secs) : 0;
    if (work > 0) __atomic_fetch_add(&mc_shm->py_trace_work, (uint64_t)work, __ATOMIC_RELAXED);
    if (s > 0) __atomic_fetch_add(&mc_shm->py_trace_ns, (uint64_t)(s * 1e9), __ATOMIC_RELAXED);
    __atomic_fetch_add(&mc_shm->py_windows, 1, __ATOMIC_RELEASE);
}

/* Copies the snapshot's results into the mapping. GIL held. */
static void publish(PyObject *res)
{
    PyObject *rows = api.TupleGetItem(res, 0), *ng = api.TupleGetItem(res, 1);
    long n = rows ? api.ListSize(rows) : -1;
    for (long i = 0; i < n; i++) {
        PyObject *row = api.ListGetItem(rows, i);
        PyObject *name = row ? api.TupleGetItem(row, 0) : NULL;
        const char *s = name ? api.UnicodeAsUTF8(name) : NULL;
        struct mc_shm_pytype *e = s ? entry_for(s) : NULL;
        if (!e) continue;
        __atomic_store_n(&e->live, api.LongAsLongLong(api.TupleGetItem(row, 1)), __ATOMIC_RELAXED);
        long long g = api.LongAsLongLong(api.TupleGetItem(row, 2));
        if (g > 0) __atomic_fetch_add(&e->garbage, (uint64_t)g, __ATOMIC_RELAXED);
        PyObject *held = api.TupleGetItem(row, 3);
        const char *h = held ? api.UnicodeAsUTF8(held) : NULL;
        if (h && *h && strncmp(e->held, h, MC_PY_HELD - 1)) {
            size_t l = strnlen(h, MC_PY_HELD - 1);
            memcpy(e->held, h, l);
            e->held[l] = 0;
        }
    }
    long long total = ng ? api.LongAsLongLong(ng) : 0;
    if (total > 0) __atomic_fetch_add(&mc_shm->py_garbage, (uint64_t)total, __ATOMIC_RELAXED);
    api.ErrClear();
}

/* Tracing windows: MEMCREEP_PY_TRACE_MS is the period (0: never),
 * MEMCREEP_PY_PHASE_MS each of the two phases, the first window starts
 * MEMCREEP_PY_FIRST_MS after the first snapshot. */
static double trace_period = 60.0, trace_phase = 1.0, trace_first = 10.0;

/* The work to credit to this snapshot: memcreep's count when it sent the
 * load, else the units the program marked. */
static unsigned long long work_now(void)
{
    uint64_t ext = __atomic_load_n(&mc_shm->py_work_ext, __ATOMIC_ACQUIRE);
    return ext ? ext - 1 : __atomic_load_n(&mc_shm->work_units, __ATOMIC_RELAXED);
}

enum call { CALL_SNAPSHOT, CALL_RELEASE, CALL_TICK };

/* Runs one of the Python functions with the GIL and publishes what it
 * returned. Returns 0 when it ran. */
static int run(enum call what)
{
    if (api.IsFinalizing && api.IsFinalizing()) return -1;
    int g = api.GILState_Ensure();
    int rc = -1;
    if (setup() == 0) {
        PyObject *res = NULL;
        if (what == CALL_SNAPSHOT)
            res = api.CallObject(fn_snapshot, NULL);
        else if (what == CALL_RELEASE)
            res = api.CallObject(fn_release, NULL);
        else
            res = api.CallFunction(fn_tick, "Kddd", work_now(), trace_phase, trace_period,
                                   trace_first);
        if (res) {
            if (what == CALL_SNAPSHOT) publish(res);
            if (what == CALL_TICK && res != api.None) publish_lines(res);
            api.DecRef(res);
            rc = 0;
        }
        api.ErrClear();
    }
    api.GILState_Release(g);
    return rc;
}

static void *py_thread(void *arg)
{
    (void)arg;
    uint64_t served = 0, last_request_ns = mc_now_ns(CLOCK_MONOTONIC), next_tick = 0;
    int keeping = 0; /* memcreep is asking: line tracing may run */
    const struct timespec poll = {0, POLL_NS};
    for (;;) {
        nanosleep(&poll, NULL);
        if (!mc_shm || !mc_active || mc_shm->py_state == MC_PY_OFF) break;
        uint64_t now = mc_now_ns(CLOCK_MONOTONIC);
        if (!api.IsInitialized()) continue;
        if (mc_shm->py_state == MC_PY_NONE) {
            if (now - started_ns < CHILD_DELAY_NS) continue;
            __atomic_store_n(&mc_shm->py_state, MC_PY_ACTIVE, __ATOMIC_RELEASE);
        }
        if (api.IsFinalizing && api.IsFinalizing()) {
            __atomic_store_n(&mc_shm->py_state, MC_PY_OFF, __ATOMIC_RELEASE);
            break;
        }
        /* Line tracing keeps its own time, while memcreep is asking. */
        if (trace_period > 0 && keeping && now >= next_tick) {
            run(CALL_TICK);
            next_tick = now + TICK_NS;
        }
        uint64_t want = __atomic_load_n(&mc_shm->py_request, __ATOMIC_ACQUIRE);
        if (want == served || want == __atomic_load_n(&mc_shm->py_done, __ATOMIC_ACQUIRE)) {
            served = want;
            if (keeping && now - last_request_ns > RELEASE_NS) {
                run(CALL_RELEASE);
                keeping = 0;
            }
            continue;
        }
        last_request_ns = now;
        /* Timed alone: memcreep spaces its requests by this, and a line
         * tracing tick just before (a window's end can take a while) is
         * not the snapshot's cost. */
        uint64_t t0 = mc_now_ns(CLOCK_MONOTONIC);
        if (run(CALL_SNAPSHOT) == 0) {
            keeping = 1;
        } else {
            __atomic_fetch_add(&mc_shm->py_skipped, 1, __ATOMIC_RELAXED);
        }
        mc_shm->py_snap_ns = mc_now_ns(CLOCK_MONOTONIC) - t0;
        served = want;
        __atomic_store_n(&mc_shm->py_done, want, __ATOMIC_RELEASE);
    }
    return NULL;
}

/* Starts the thread with every signal blocked (they are the program's),
 * through the real pthread_create: it is not the program's thread. */
static void start_thread(void)
{
    typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    create_fn create = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
    if (!create) return;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 256 * 1024);
    pthread_t t;
    started_ns = mc_now_ns(CLOCK_MONOTONIC);
    create(&t, &a, py_thread, NULL);
    pthread_attr_destroy(&a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void mc_python_start(void)
{
    if (mc_env_u64("MEMCREEP_PYTHON", 1) == 0) return;
    trace_period = (double)mc_env_u64("MEMCREEP_PY_TRACE_MS", 60000) / 1000;
    trace_phase = (double)mc_env_u64("MEMCREEP_PY_PHASE_MS", 1000) / 1000;
    trace_first = (double)mc_env_u64("MEMCREEP_PY_FIRST_MS", 10000) / 1000;
    have_api = load_api();
    if (have_api) start_thread();
}

/* Set in the parent by the thread that forks, read in the child. */
static int forked_from_main = 1;

void mc_python_fork_prepare(void)
{
    forked_from_main = syscall(SYS_gettid) == getpid();
}

void mc_python_after_fork(void)
{
    /* The parent's compiled function lives in the child's copy of the
     * heap and stays valid; only the thread must be started again. The
     * child's state is its own from here.
     *
     * Not in a child forked by a thread other than the main one: there the
     * forking thread is the child's only Python thread, and when it ends
     * (its function returns) the process must end with it. A thread of the
     * library would keep the process alive (its parent waiting for ever),
     * and its PyGILState_Ensure after that last thread state is gone would
     * reuse the interpreter's initial thread state, which CPython 3.11
     * leaves marked initialized in such a child ("Fatal Python error:
     * init_threadstate"). Such a child is tracked natively, without
     * Python snapshots. */
    if (!have_api || mc_shm->py_state == MC_PY_OFF) return;
    if (!forked_from_main) {
        mc_shm->py_state = MC_PY_OFF;
        return;
    }
    mc_shm->py_state = MC_PY_NONE;
    start_thread();
}
