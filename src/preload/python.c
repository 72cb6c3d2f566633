/* python.c - the bridge to CPython: object counts and cycle garbage by
 * type, taken from inside a Python process with nothing installed into it.
 *
 * When the program exports CPython's C API (the python3 executable does),
 * the library starts one thread of its own. It never runs Python inside an
 * allocation hook: when memcreep asks for a snapshot (py_request in the
 * mapping), the thread takes the GIL with PyGILState_Ensure, like any
 * thread calling into Python, and runs a small function compiled once
 * (SNAPSHOT_SRC below) that
 *   - runs a full collection, so what is counted is truly alive;
 *   - counts the objects the collector found unreachable since the last
 *     snapshot, by type: cycle garbage, what makes memory climb between
 *     collections even when it ends up flat (seed 000's Response <->
 *     BoundSyncStream). To see them, gc.DEBUG_SAVEALL stays set between
 *     snapshots, so the collector keeps what it finds in gc.garbage instead
 *     of freeing it; each snapshot counts them, empties gc.garbage and
 *     frees them with a collection without the flag. They are freed one
 *     snapshot later than they would be. If no snapshot is asked for
 *     during RELEASE_NS (memcreep gone), the flag is cleared and they are
 *     freed at once; a forked child clears it too until its own thread
 *     asks again. A program that set DEBUG_SAVEALL itself is left alone;
 *   - counts GC-tracked objects by type (module.qualname).
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
#include <time.h>

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
    long (*ListSize)(PyObject *);
    PyObject *(*ListGetItem)(PyObject *, long);
    PyObject *(*TupleGetItem)(PyObject *, long);
    const char *(*UnicodeAsUTF8)(PyObject *);
    long long (*LongAsLongLong)(PyObject *);
    void (*DecRef)(PyObject *);
    void (*ErrClear)(void);
} api;

#define PY_FILE_INPUT  257            /* Py_file_input */
#define RELEASE_NS     10000000000ull /* no request for 10 s: stop keeping garbage */
#define POLL_NS        10000000L      /* the thread looks for requests every 10 ms */
#define CHILD_DELAY_NS 200000000ull   /* a forked child's first snapshot waits */

/* Returns (rows, garbage found) where rows are (type, live, garbage,
 * held by) for the types worth following: the most numerous, those with
 * garbage, and every type reported once (so that each keeps a series).
 * "held by" names what holds a recent object of a type that grew at three
 * snapshots running: the chain of referrers from the outermost one found
 * (a module global, or an object only a running function holds) down to
 * it, containers and attributes on the way, found with gc.get_referrers
 * in at most eight steps, frames left out: "__main__.Poller.seen > list". */
static const char SNAPSHOT_SRC[] =
    "import gc as _gc, os as _os, sys as _sys\n"
    "_seen = set()\n"
    "_st = {'ours': False, 'n': 0}\n"
    "_prev = {}\n"
    "_streak = {}\n"
    "_looked = {}\n"
    "_held = {}\n"
    "_want = {}\n"
    "\n"
    "def _name(t):\n"
    "    m = getattr(t, '__module__', None)\n"
    "    q = getattr(t, '__qualname__', None) or getattr(t, '__name__', '?')\n"
    "    return q if not m or m == 'builtins' else m + '.' + q\n"
    "\n"
    "def _release():\n"
    "    if _st['ours']:\n"
    "        _st['ours'] = False\n"
    "        _gc.set_debug(_gc.get_debug() & ~_gc.DEBUG_SAVEALL)\n"
    "        del _gc.garbage[:]\n"
    "        _gc.collect()\n"
    "\n"
    "def _child():\n"
    "    if _st['ours']:\n"
    "        _st['ours'] = False\n"
    "        _gc.set_debug(_gc.get_debug() & ~_gc.DEBUG_SAVEALL)\n"
    "        del _gc.garbage[:]\n"
    "\n"
    "_os.register_at_fork(after_in_child=_child)\n"
    "\n"
    "def _attr_of(owner, item):\n"
    "    try:\n"
    "        for k, v in vars(owner).items():\n"
    "            if v is item:\n"
    "                return k\n"
    "    except TypeError:\n"
    "        pass\n"
    "    return None\n"
    "\n"
    "def _dict_owner(d, mine):\n"
    "    for m in list(_sys.modules.values()):\n"
    "        if getattr(m, '__dict__', None) is d:\n"
    "            return m.__name__, None\n"
    "    for r in _gc.get_referrers(d):\n"
    "        if id(r) not in mine and getattr(r, '__dict__', None) is d:\n"
    "            return _name(type(r)), r\n"
    "    return None, None\n"
    "\n"
    "_CONTAINERS = (list, tuple, set, frozenset, dict)\n"
    "\n"
    "def _is_container(r):\n"
    "    return isinstance(r, _CONTAINERS) or type(r).__name__ == 'deque'\n"
    "\n"
    "def _held_by(obj, mine):\n"
    "    steps = []\n"
    "    seen = {id(obj)}\n"
    "    cur = obj\n"
    "    for _ in range(8):\n"
    "        refs = [r for r in _gc.get_referrers(cur) if id(r) not in mine and\n"
    "                id(r) not in seen and type(r).__name__ not in ('frame', 'cell')]\n"
    "        if not refs:\n"
    "            break\n"
    "        refs.sort(key=lambda r: 0 if _is_container(r) else 1)\n"
    "        r = refs[0]\n"
    "        refs = None\n"
    "        seen.add(id(r))\n"
    "        if isinstance(r, dict):\n"
    "            k = None\n"
    "            for key, v in r.items():\n"
    "                if v is cur:\n"
    "                    k = key\n"
    "                    break\n"
    "            key = v = None\n"
    "            owner, inst = _dict_owner(r, mine)\n"
    "            if owner and isinstance(k, str):\n"
    "                steps.append(owner + '.' + k)\n"
    "                if inst is None:\n"
    "                    break\n"
    "                seen.add(id(inst))\n"
    "                r = inst\n"
    "            else:\n"
    "                steps.append('dict')\n"
    "        elif _is_container(r):\n"
    "            steps.append(type(r).__name__)\n"
    "        else:\n"
    "            k = _attr_of(r, cur)\n"
    "            steps.append(_name(type(r)) + ('.' + k if k else ''))\n"
    "        cur = r\n"
    "    return ' > '.join(reversed(steps))\n"
    "\n"
    "def _snapshot(keep=200, cap=1000):\n"
    "    _st['n'] += 1\n"
    "    found = {}\n"
    "    dbg = _gc.get_debug()\n"
    "    if _st['ours'] or not dbg & _gc.DEBUG_SAVEALL:\n"
    "        _gc.set_debug(dbg | _gc.DEBUG_SAVEALL)\n"
    "        _gc.collect()\n"
    "        for o in _gc.garbage:\n"
    "            n = _name(type(o))\n"
    "            found[n] = found.get(n, 0) + 1\n"
    "        ng = len(_gc.garbage)\n"
    "        del _gc.garbage[:]\n"
    "        o = None\n"
    "        if ng:\n"
    "            _gc.set_debug(dbg & ~_gc.DEBUG_SAVEALL)\n"
    "            _gc.collect()\n"
    "            _gc.set_debug(dbg | _gc.DEBUG_SAVEALL)\n"
    "        _st['ours'] = True\n"
    "    else:\n"
    "        ng = 0\n"
    "        _gc.collect()\n"
    "    by_type = {}\n"
    "    sample = {}\n"
    "    for o in _gc.get_objects():\n"
    "        t = type(o)\n"
    "        by_type[t] = by_type.get(t, 0) + 1\n"
    "        if t in _want:\n"
    "            sample[t] = o\n"
    "    o = t = None\n"
    "    live = {}\n"
    "    names = {}\n"
    "    for t, c in by_type.items():\n"
    "        n = _name(t)\n"
    "        live[n] = live.get(n, 0) + c\n"
    "        names[n] = t\n"
    "    by_type = t = None\n"
    "    # A type that grew at three snapshots running is looked at: what holds\n"
    "    # a recent one of them (one type per snapshot, each again after ten).\n"
    "    while sample:\n"
    "        t, obj = sample.popitem()\n"
    "        n = _want[t]\n"
    "        _held[n] = _held_by(obj, {id(sample), id(_want), id(live), id(names)})[:63]\n"
    "        _looked[n] = _st['n']\n"
    "    sample = obj = None\n"
    "    _want.clear()\n"
    "    best = None\n"
    "    for n, c in live.items():\n"
    "        s = _streak.get(n, 0) + 1 if c > _prev.get(n, c) else 0\n"
    "        _streak[n] = s\n"
    "        if s >= 3 and c >= 50 and _st['n'] - _looked.get(n, -99) >= 10:\n"
    "            rank = (names[n].__module__ != 'builtins', c - _prev.get(n, 0))\n"
    "            if best is None or rank > best[0]:\n"
    "                best = (rank, n)\n"
    "    if best:\n"
    "        _want[names[best[1]]] = best[1]\n"
    "    _prev.clear()\n"
    "    _prev.update(live)\n"
    "    top = sorted(live, key=live.get, reverse=True)[:keep]\n"
    "    for n in list(top) + list(found):\n"
    "        if len(_seen) < cap:\n"
    "            _seen.add(n)\n"
    "    return [(n, live.get(n, 0), found.get(n, 0), _held.get(n, '')) for n in _seen], ng\n";

static PyObject *globals;
static PyObject *fn_snapshot, *fn_release;
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
    LOAD(ListSize, "PyList_Size");
    LOAD(ListGetItem, "PyList_GetItem");
    LOAD(TupleGetItem, "PyTuple_GetItem");
    LOAD(UnicodeAsUTF8, "PyUnicode_AsUTF8");
    LOAD(LongAsLongLong, "PyLong_AsLongLong");
    LOAD(DecRef, "Py_DecRef");
    LOAD(ErrClear, "PyErr_Clear");
#undef LOAD
    /* Py_IsFinalizing is public from 3.13; before, _Py_IsFinalizing. */
    *(void **)&api.IsFinalizing = dlsym(RTLD_DEFAULT, "Py_IsFinalizing");
    if (!api.IsFinalizing) *(void **)&api.IsFinalizing = dlsym(RTLD_DEFAULT, "_Py_IsFinalizing");
    return 1;
}

/* Compiles the snapshot code into a private namespace. GIL held. */
static int setup(void)
{
    if (fn_snapshot) return 0;
    PyObject *g = api.DictNew();
    PyObject *b = api.ImportModule("builtins");
    if (!g || !b || api.DictSetItemString(g, "__builtins__", b) != 0) goto fail;
    api.DecRef(b);
    b = NULL;
    PyObject *code = api.CompileString(SNAPSHOT_SRC, "<memcreep>", PY_FILE_INPUT);
    if (!code) goto fail;
    PyObject *r = api.EvalCode(code, g, g);
    api.DecRef(code);
    if (!r) goto fail;
    api.DecRef(r);
    fn_snapshot = api.DictGetItemString(g, "_snapshot"); /* borrowed: g lives on */
    fn_release = api.DictGetItemString(g, "_release");
    if (!fn_snapshot || !fn_release) goto fail;
    globals = g;
    return 0;
fail:
    api.ErrClear();
    if (b) api.DecRef(b);
    if (g) api.DecRef(g);
    fn_snapshot = fn_release = NULL;
    return -1;
}

static struct mc_shm_pytype *types(void)
{
    return (struct mc_shm_pytype *)((char *)mc_shm + mc_shm->off_py_types);
}

/* The table entry for a type name, added when new; NULL when full. Only
 * this thread writes the table. */
static struct mc_shm_pytype *entry_for(const char *name)
{
    struct mc_shm_pytype *t = types();
    uint64_t n = mc_shm->py_types_used;
    for (uint64_t i = 0; i < n; i++)
        if (!strncmp(t[i].name, name, MC_PY_NAME - 1)) return &t[i];
    if (n >= mc_shm->py_cap) return NULL;
    strncpy(t[n].name, name, MC_PY_NAME - 1);
    t[n].name[MC_PY_NAME - 1] = 0;
    __atomic_store_n(&mc_shm->py_types_used, n + 1, __ATOMIC_RELEASE);
    return &t[n];
}

/* Copies the snapshot's rows into the table. GIL held. */
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

/* Calls fn (the snapshot or the release) with the GIL; 0 when it ran. */
static int run(PyObject **which, int snapshot)
{
    if (api.IsFinalizing && api.IsFinalizing()) return -1;
    int g = api.GILState_Ensure();
    int rc = -1;
    if (setup() == 0 && *which) {
        PyObject *res = api.CallObject(*which, NULL);
        if (res) {
            if (snapshot) publish(res);
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
    uint64_t served = 0, last_request_ns = mc_now_ns(CLOCK_MONOTONIC);
    int keeping = 0; /* DEBUG_SAVEALL set by a snapshot and not released */
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
        uint64_t want = __atomic_load_n(&mc_shm->py_request, __ATOMIC_ACQUIRE);
        if (want == served || want == __atomic_load_n(&mc_shm->py_done, __ATOMIC_ACQUIRE)) {
            served = want;
            if (keeping && now - last_request_ns > RELEASE_NS) {
                run(&fn_release, 0);
                keeping = 0;
            }
            continue;
        }
        last_request_ns = now;
        if (run(&fn_snapshot, 1) == 0) {
            keeping = 1;
        } else {
            __atomic_fetch_add(&mc_shm->py_skipped, 1, __ATOMIC_RELAXED);
        }
        mc_shm->py_snap_ns = mc_now_ns(CLOCK_MONOTONIC) - now;
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
    have_api = load_api();
    if (have_api) start_thread();
}

void mc_python_after_fork(void)
{
    /* The parent's compiled function lives in the child's copy of the
     * heap and stays valid; only the thread must be started again. The
     * child's state is its own from here. */
    if (!have_api || mc_shm->py_state == MC_PY_OFF) return;
    mc_shm->py_state = MC_PY_NONE;
    start_thread();
}
