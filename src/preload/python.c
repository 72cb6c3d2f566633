/* python.c - the bridge to CPython: object counts and cycle garbage by
 * type, taken from inside a Python process with nothing installed into it.
 *
 * When the program exports CPython's C API (the python3 executable does),
 * the library starts one thread of its own. It never calls Python inside
 * an allocation hook: when memcreep asks for a snapshot (py_request in the
 * mapping), the thread takes the GIL with PyGILState_Ensure, like any
 * thread calling into Python, and takes the snapshot in C
 * (python_snapshot.c), during which no bytecode runs and nothing is
 * collected:
 *   - the cycle garbage the program's own collections freed since the
 *     last snapshot, by type (python_garbage.c: counted by a collector
 *     callback as each collection frees it): what makes memory climb
 *     between collections even when it ends up flat (seed 000's Response
 *     <-> BoundSyncStream);
 *   - GC-tracked objects by type (module.qualname), only those reachable
 *     as a full collection would find them (python_census.c), and for a
 *     type that keeps growing, what holds a recent object of it
 *     (python_held.c);
 * and now and then (--py-trace) runs tracemalloc for two short phases
 * (python_code.c) and adds up which Python lines grew from the first to
 * the second: the lines where what keeps growing is allocated. tracemalloc
 * costs ~9x while it runs, so it runs 2 s per period (60 s by default).
 * The results go to the mapping's tables; the API is looked up with dlsym,
 * so the library loads in any process, and the few layouts read directly
 * are in python_api.h.
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
#include "python_api.h"

struct mc_py_api mc_py;

#define PY_FILE_INPUT  257            /* Py_file_input */
#define RELEASE_NS     10000000000ull /* no request for 10 s: tracing stops */
#define POLL_NS        10000000L      /* the thread looks for requests every 10 ms */
#define TICK_NS        250000000ull   /* line tracing looks at its clock 4 times a second */
#define CHILD_DELAY_NS 200000000ull   /* a forked child's first snapshot waits */
#define UNITS_NS       1000000000ull  /* --unit looks for new threads every second */

static PyObject *globals;
static PyObject *fn_release, *fn_tick;
static int have_api;
static int setup_tries;
#define SETUP_TRIES 5
static uint64_t started_ns;

static int load_api(void)
{
#define LOAD(field, name)                                                                          \
    if (!(*(void **)&mc_py.field = dlsym(RTLD_DEFAULT, name))) return 0
    LOAD(IsInitialized, "Py_IsInitialized");
    LOAD(GILState_Ensure, "PyGILState_Ensure");
    LOAD(GILState_Release, "PyGILState_Release");
    LOAD(CompileString, "Py_CompileString");
    LOAD(EvalCode, "PyEval_EvalCode");
    LOAD(DictNew, "PyDict_New");
    LOAD(DictSetItemString, "PyDict_SetItemString");
    LOAD(DictGetItemString, "PyDict_GetItemString");
    LOAD(DictGetItem, "PyDict_GetItem");
    LOAD(DictNext, "PyDict_Next");
    LOAD(UnicodeFromString, "PyUnicode_FromString");
    LOAD(ImportGetModuleDict, "PyImport_GetModuleDict");
    LOAD(ModuleGetDict, "PyModule_GetDict");
    LOAD(ModuleGetName, "PyModule_GetName");
    LOAD(ModuleType, "PyModule_Type");
    LOAD(SetType, "PySet_Type");
    LOAD(FrozenSetType, "PyFrozenSet_Type");
    LOAD(FrameType, "PyFrame_Type");
    LOAD(CellType, "PyCell_Type");
    LOAD(ListSetSlice, "PyList_SetSlice");
    LOAD(ListInsert, "PyList_Insert");
    LOAD(ImportModule, "PyImport_ImportModule");
    LOAD(CallObject, "PyObject_CallObject");
    LOAD(CallFunction, "PyObject_CallFunction");
    LOAD(None, "_Py_NoneStruct");
    LOAD(False, "_Py_FalseStruct");
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
    *(void **)&mc_py.TypeGetQualName = dlsym(RTLD_DEFAULT, "PyType_GetQualName");
    /* Py_IsFinalizing is public from 3.13; before, _Py_IsFinalizing. */
    *(void **)&mc_py.IsFinalizing = dlsym(RTLD_DEFAULT, "Py_IsFinalizing");
    if (!mc_py.IsFinalizing)
        *(void **)&mc_py.IsFinalizing = dlsym(RTLD_DEFAULT, "_Py_IsFinalizing");
    return 1;
}

/* _objects_of(cls): a list of the tracked objects whose type is cls or a
 * subclass of it (open sockets, for the line tracing). */
static PyObject *objects_of(PyObject *self, PyObject *cls)
{
    (void)self;
    PyObject *objs = mc_py_all_objects(), *out = mc_py.ListNew(0);
    if (!objs || !out) {
        if (objs) mc_py.DecRef(objs);
        if (out) mc_py.DecRef(out);
        return NULL;
    }
    long n = mc_py.ListSize(objs);
    for (long i = 0; i < n; i++) {
        PyObject *o = mc_py.ListGetItem(objs, i);
        if (mc_py.TypeIsSubtype(MC_PY_TYPE(o), cls)) mc_py.ListAppend(out, o);
    }
    mc_py.DecRef(objs);
    return out;
}

static struct mc_py_method objects_of_def = {"_objects_of", objects_of, MC_METH_O, NULL};

/* Registered with atexit, so called after the program's own exit handlers
 * (they run last registered first) and its non-daemon threads, right
 * before the interpreter tears itself down: recording stops there, and
 * the figures a report ends with are the program's at its end, not those
 * of the teardown that frees every module's objects. */
static PyObject *at_exit(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    __atomic_store_n(&mc_active, 0, __ATOMIC_RELEASE);
    mc_py.IncRef(mc_py.None);
    return mc_py.None;
}

static struct mc_py_method at_exit_def = {"memcreep_exit", at_exit, 0x0004 /* METH_NOARGS */, NULL};

/* Registers at_exit with the atexit module. GIL held. */
static void register_exit(void)
{
    PyObject *m = mc_py.ImportModule("atexit");
    PyObject *reg = m ? mc_py.GetAttrString(m, "register") : NULL;
    PyObject *fn = reg ? mc_py.CFunctionNewEx(&at_exit_def, NULL, NULL) : NULL;
    PyObject *r = fn ? mc_py.CallFunction(reg, "O", fn) : NULL;
    if (r) mc_py.DecRef(r);
    if (fn) mc_py.DecRef(fn);
    if (reg) mc_py.DecRef(reg);
    if (m) mc_py.DecRef(m);
    mc_py.ErrClear();
}

/* Compiles the line tracing code into a private namespace, installs the
 * collector callback and checks the instance layout on the code's probe.
 * GIL held. Returns 0, or -1 (to be tried again at the next request). */
static int reinstall; /* detached since setup: the callback and the wrappers are out */

static int setup(void)
{
    if (globals && reinstall) {
        /* Attached again: the code is compiled; what a detach took out of
         * the interpreter goes back in, for this attach's mapping. */
        if (mc_py_garbage_start() != 0) return -1;
        mc_hooks_python(mc_py_alloc_start() == 1);
        reinstall = 0;
    }
    if (globals) return 0;
    PyObject *g = mc_py.DictNew();
    PyObject *b = mc_py.ImportModule("builtins");
    if (!g || !b || mc_py.DictSetItemString(g, "__builtins__", b) != 0) goto fail;
    PyObject *fo = mc_py.CFunctionNewEx(&objects_of_def, NULL, NULL);
    int bad = !fo || mc_py.DictSetItemString(g, "_objects_of", fo) != 0;
    if (fo) mc_py.DecRef(fo);
    if (bad) goto fail;
    mc_py.DecRef(b);
    b = NULL;
    PyObject *code = mc_py.CompileString(mc_python_snapshot_src, "<memcreep>", PY_FILE_INPUT);
    if (!code) goto fail;
    PyObject *r = mc_py.EvalCode(code, g, g);
    mc_py.DecRef(code);
    if (!r) goto fail;
    mc_py.DecRef(r);
    fn_release = mc_py.DictGetItemString(g, "_release"); /* borrowed: g lives on */
    fn_tick = mc_py.DictGetItemString(g, "_trace_tick");
    PyObject *probe = mc_py.DictGetItemString(g, "_probe");
    PyObject *value = mc_py.DictGetItemString(g, "_probe_value");
    if (!fn_release || !fn_tick || !probe || !value) goto fail;
    if (mc_py_garbage_start() != 0) goto fail;
    mc_py_held_check(probe, value);
    mc_py_frames_check(g);
    mc_hooks_python(mc_py_alloc_start() == 1);
    register_exit();
    globals = g;
    return 0;
fail:
    mc_py.ErrClear();
    if (b) mc_py.DecRef(b);
    if (g) mc_py.DecRef(g);
    fn_release = fn_tick = NULL;
    return -1;
}

/* Adds rows of (where, bytes, count) -- or (where, count) when !bytes --
 * to a lines table, entries found or added by where. GIL held. */
static void add_rows(PyObject *rows, struct mc_shm_pyline *t, uint64_t *used_p, uint64_t cap,
                     int bytes)
{
    long n = rows ? mc_py.ListSize(rows) : -1;
    for (long i = 0; i < n; i++) {
        PyObject *row = mc_py.ListGetItem(rows, i);
        PyObject *where = row ? mc_py.TupleGetItem(row, 0) : NULL;
        const char *s = where ? mc_py.UnicodeAsUTF8(where) : NULL;
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
            __atomic_fetch_add(&t[k].bytes, mc_py.LongAsLongLong(mc_py.TupleGetItem(row, 1)),
                               __ATOMIC_RELAXED);
        __atomic_fetch_add(&t[k].count,
                           mc_py.LongAsLongLong(mc_py.TupleGetItem(row, bytes ? 2 : 1)),
                           __ATOMIC_RELAXED);
    }
}

/* Adds a tracing window's lines and sockets to their tables. GIL held. */
static void publish_lines(PyObject *w)
{
    char *base = (char *)mc_shm;
    add_rows(mc_py.TupleGetItem(w, 0), (struct mc_shm_pyline *)(base + mc_lay.off_py_lines),
             &mc_shm->py_lines_used, mc_lay.py_lines_cap, 1);
    add_rows(mc_py.TupleGetItem(w, 3), (struct mc_shm_pyline *)(base + mc_lay.off_py_socks),
             &mc_shm->py_socks_used, mc_lay.py_socks_cap, 0);
    long long work = mc_py.LongAsLongLong(mc_py.TupleGetItem(w, 1));
    PyObject *secs = mc_py.TupleGetItem(w, 2);
    double s = secs ? mc_py.FloatAsDouble(secs) : 0;
    if (work > 0) __atomic_fetch_add(&mc_shm->py_trace_work, (uint64_t)work, __ATOMIC_RELAXED);
    if (s > 0) __atomic_fetch_add(&mc_shm->py_trace_ns, (uint64_t)(s * 1e9), __ATOMIC_RELAXED);
    __atomic_fetch_add(&mc_shm->py_windows, 1, __ATOMIC_RELEASE);
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

enum call { CALL_SETUP, CALL_SNAPSHOT, CALL_RELEASE, CALL_TICK, CALL_UNITS };

/* Runs one of the Python functions with the GIL and publishes what it
 * returned. Returns 0 when it ran. */
static int run(enum call what)
{
    if (mc_py.IsFinalizing && mc_py.IsFinalizing()) return -1;
    int g = mc_py.GILState_Ensure();
    int rc = -1;
    if (setup() == 0) {
        PyObject *res = NULL;
        if (what == CALL_SETUP || what == CALL_SNAPSHOT || what == CALL_UNITS) {
            if (what == CALL_UNITS) mc_py_units_poll();
            rc = what == CALL_SNAPSHOT ? mc_py_snapshot() : 0;
            mc_py.ErrClear();
            mc_py.GILState_Release(g);
            return rc;
        }
        if (what == CALL_RELEASE)
            res = mc_py.CallObject(fn_release, NULL);
        else
            res = mc_py.CallFunction(fn_tick, "Kddd", work_now(), trace_phase, trace_period,
                                     trace_first);
        if (res) {
            if (what == CALL_TICK && res != mc_py.None) publish_lines(res);
            mc_py.DecRef(res);
            rc = 0;
        }
        mc_py.ErrClear();
    }
    mc_py.GILState_Release(g);
    return rc;
}

/* 1 while py_thread runs; it is counted in the header's lib_threads. */
static int thread_running;
static int stop_asked;

/* For a detach: what the bridge put into the interpreter comes out again,
 * under the GIL (line tracing, the collector callback, the allocator). */
static void stop_in_python(int keeping)
{
    if (mc_py.IsFinalizing && mc_py.IsFinalizing()) return;
    int g = mc_py.GILState_Ensure();
    if (globals) {
        if (keeping && fn_release) {
            PyObject *r = mc_py.CallObject(fn_release, NULL);
            if (r) mc_py.DecRef(r);
        }
        mc_py_garbage_stop();
        reinstall = 1;
    }
    mc_py_alloc_stop();
    mc_py.ErrClear();
    mc_py.GILState_Release(g);
}

int mc_python_bridge(void)
{
    return have_api && __atomic_load_n(&thread_running, __ATOMIC_ACQUIRE);
}

void mc_python_stop(void)
{
    if (!__atomic_load_n(&thread_running, __ATOMIC_ACQUIRE)) return;
    __atomic_store_n(&stop_asked, 1, __ATOMIC_RELEASE);
    uint64_t until = mc_now_ns(CLOCK_MONOTONIC) + 3000000000ull;
    const struct timespec step = {0, 10000000L};
    while (__atomic_load_n(&thread_running, __ATOMIC_ACQUIRE) && mc_now_ns(CLOCK_MONOTONIC) < until)
        nanosleep(&step, NULL);
}

static void *py_thread(void *arg)
{
    (void)arg;
    uint64_t served = 0, last_request_ns = mc_now_ns(CLOCK_MONOTONIC), next_tick = 0;
    uint64_t next_units = 0;
    int units_wanted = mc_py_units_wanted();
    int keeping = 0; /* memcreep is asking: line tracing may run */
    const struct timespec poll = {0, POLL_NS};
    for (;;) {
        nanosleep(&poll, NULL);
        if (__atomic_load_n(&stop_asked, __ATOMIC_ACQUIRE)) {
            if (mc_py.IsInitialized()) stop_in_python(keeping);
            break;
        }
        if (!mc_shm || !mc_active || mc_shm->py_state == MC_PY_OFF) break;
        uint64_t now = mc_now_ns(CLOCK_MONOTONIC);
        if (!mc_py.IsInitialized()) continue;
        if (mc_shm->py_state == MC_PY_NONE) {
            if (now - started_ns < CHILD_DELAY_NS) continue;
            __atomic_store_n(&mc_shm->py_state, MC_PY_ACTIVE, __ATOMIC_RELEASE);
        }
        if (mc_py.IsFinalizing && mc_py.IsFinalizing()) {
            __atomic_store_n(&mc_shm->py_state, MC_PY_OFF, __ATOMIC_RELEASE);
            break;
        }
        /* Set up as soon as the interpreter runs, not at the first
         * request: the hooks read Python frames only once it is done. */
        if (!globals && setup_tries < SETUP_TRIES) {
            setup_tries++;
            run(CALL_SETUP);
        }
        /* --unit: the function found, new threads given the counter. */
        if (globals && units_wanted && now >= next_units) {
            run(CALL_UNITS);
            next_units = now + UNITS_NS;
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
    if (__atomic_exchange_n(&thread_running, 0, __ATOMIC_ACQ_REL) && mc_shm)
        __atomic_fetch_sub(&mc_shm->lib_threads, 1, __ATOMIC_RELAXED);
    return NULL;
}

static void start_thread(void)
{
    started_ns = mc_now_ns(CLOCK_MONOTONIC);
    /* Attached: the interpreter is long up, and memcreep waits for the
     * first snapshot before it measures. */
    if (mc_attach_gen) started_ns -= CHILD_DELAY_NS;
    mc_sys_thread(py_thread, 256 * 1024, &thread_running);
}

void mc_python_start(void)
{
    if (mc_env_u64("MEMCREEP_PYTHON", 1) == 0) return;
    /* An attach after a detach: the types seen then were another mapping's. */
    stop_asked = 0;
    setup_tries = 0;
    if (globals) mc_py_snapshot_forget();
    trace_period = (double)mc_env_u64("MEMCREEP_PY_TRACE_MS", 60000) / 1000;
    trace_phase = (double)mc_env_u64("MEMCREEP_PY_PHASE_MS", 1000) / 1000;
    trace_first = (double)mc_env_u64("MEMCREEP_PY_FIRST_MS", 10000) / 1000;
    have_api = load_api();
    if (have_api) mc_py_frames_init();
    if (have_api) mc_py_units_init();
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
    /* The parent's thread is not here; the copied header counted it. */
    if (__atomic_exchange_n(&thread_running, 0, __ATOMIC_ACQ_REL))
        __atomic_fetch_sub(&mc_shm->lib_threads, 1, __ATOMIC_RELAXED);
    if (!have_api || mc_shm->py_state == MC_PY_OFF) return;
    if (!forked_from_main) {
        mc_shm->py_state = MC_PY_OFF;
        return;
    }
    mc_shm->py_state = MC_PY_NONE;
    mc_py_snapshot_reset();
    start_thread();
}
