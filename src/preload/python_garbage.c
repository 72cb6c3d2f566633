/* python_garbage.c - cycle garbage by type, counted as the program's own
 * collections free it: memcreep never collects.
 *
 * A callback first in gc.callbacks sets gc.DEBUG_SAVEALL when a collection
 * starts, so that the collector hands what it would free to gc.garbage
 * instead; when the collection stops, the callback counts those objects by
 * type and does what the collector would have done with them
 * (Modules/gcmodule.c, delete_garbage: tp_clear on each, which breaks the
 * cycles and frees them), then restores the flag. The objects die in the
 * same collection as without memcreep, their finalizers having run at the
 * same point; the collector's statistics, counts and return value are
 * untouched (DEBUG_SAVEALL changes none of them).
 *
 * gc.garbage is put back as the program would see it: with DEBUG_SAVEALL
 * the collector also appends everything reachable from an object with a
 * legacy finalizer (tp_del), where without it only those objects go there
 * (handle_legacy_finalizers); the "uncollectable" count the collector
 * passes to callbacks says how many such trailing entries there are. A
 * program that set DEBUG_SAVEALL itself is left alone: its garbage is not
 * freed, so none is counted. The callback is C: no bytecode runs in it.
 *
 * The total is the collector's own count ("collected", as gc.get_stats()
 * sums it), which a user can check; it may exceed the sum by type by the
 * weak references a collection freed. */
#include <string.h>

#include "internal.h"
#include "python_api.h"

#define SAVEALL 32 /* gc.DEBUG_SAVEALL */
#define NAMES   1024

struct name_count {
    char name[MC_PY_NAME];
    long long n;
};

static struct name_count *names; /* from the library's own memory */
static uint32_t nnames;
static long long total;

static PyObject *gc_garbage, *gc_get_debug, *gc_set_debug;
static int ours;   /* this collection's DEBUG_SAVEALL is memcreep's */
static long first; /* gc.garbage's length when it started */

/* Objects held across the stop callback (our own buffer, grown by
 * doubling, never the program's heap). */
static PyObject **held;
static size_t held_cap;

static int hold(size_t n)
{
    if (n <= held_cap) return 0;
    size_t cap = held_cap ? held_cap : 1024;
    while (cap < n)
        cap *= 2;
    PyObject **p = mc_sys_alloc(cap * sizeof(*p));
    if (!p) return -1;
    mc_sys_free(held, held_cap * sizeof(*held));
    held = p;
    held_cap = cap;
    return 0;
}

static void count(const char *name, long long n)
{
    for (uint32_t i = 0; i < nnames; i++)
        if (!strcmp(names[i].name, name)) {
            names[i].n += n;
            return;
        }
    if (nnames >= NAMES) return;
    size_t l = strnlen(name, MC_PY_NAME - 1);
    memcpy(names[nnames].name, name, l);
    names[nnames].name[l] = 0;
    names[nnames++].n = n;
}

static long debug_flags(void)
{
    PyObject *d = mc_py.CallObject(gc_get_debug, NULL);
    long v = d ? (long)mc_py.LongAsLongLong(d) : -1;
    if (d) mc_py.DecRef(d);
    return v;
}

static void set_debug(long v)
{
    PyObject *r = mc_py.CallFunction(gc_set_debug, "l", v);
    if (r) mc_py.DecRef(r);
}

static void on_start(void)
{
    long dbg = debug_flags();
    ours = dbg >= 0 && !(dbg & SAVEALL);
    if (!ours) return;
    first = mc_py.ListSize(gc_garbage);
    set_debug(dbg | SAVEALL);
}

static void on_stop(PyObject *info)
{
    if (!ours) return;
    ours = 0;
    long dbg = debug_flags();
    if (dbg >= 0) set_debug(dbg & ~SAVEALL);
    PyObject *u = mc_py.DictGetItemString(info, "uncollectable");
    PyObject *m = mc_py.DictGetItemString(info, "collected");
    long legacy = u ? (long)mc_py.LongAsLongLong(u) : 0;
    long len = mc_py.ListSize(gc_garbage), k = len - first;
    if (k <= 0 || legacy < 0 || legacy > k || hold((size_t)k) != 0) return;
    long ncoll = k - legacy;
    for (long i = 0; i < k; i++) {
        held[i] = mc_py.ListGetItem(gc_garbage, first + i);
        mc_py.IncRef(held[i]);
    }
    mc_py.ListSetSlice(gc_garbage, first, len, NULL);
    /* Legacy finalizers go back, alone, as without DEBUG_SAVEALL. */
    for (long i = ncoll; i < k; i++)
        if (MC_TP_DEL(MC_PY_TYPE(held[i]))) mc_py.ListAppend(gc_garbage, held[i]);
    /* Counted by runs of one type (a cycle's objects come together): one
     * name and one look-up per run. */
    char tn[MC_PY_NAME];
    for (long i = 0, j; i < ncoll; i = j) {
        PyObject *t = MC_PY_TYPE(held[i]);
        for (j = i + 1; j < ncoll && MC_PY_TYPE(held[j]) == t; j++)
            ;
        mc_py_type_name(t, tn, sizeof(tn));
        count(tn, j - i);
    }
    /* What delete_garbage does with each: clear it unless an earlier clear
     * already left it to memcreep's reference alone. */
    for (long i = 0; i < ncoll; i++) {
        mc_py_inquiry clear = MC_TP_CLEAR(MC_PY_TYPE(held[i]));
        if (MC_PY_REFCNT(held[i]) > 1 && clear) clear(held[i]);
        mc_py.ErrClear();
        mc_py.DecRef(held[i]);
    }
    for (long i = ncoll; i < k; i++)
        mc_py.DecRef(held[i]);
    if (m) total += mc_py.LongAsLongLong(m);
    mc_py.ErrClear();
}

/* callback(phase, info), as gc calls it. */
static PyObject *callback(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *phase = mc_py.TupleGetItem(args, 0), *info = mc_py.TupleGetItem(args, 1);
    const char *p = phase ? mc_py.UnicodeAsUTF8(phase) : NULL;
    if (p && !strcmp(p, "start"))
        on_start();
    else if (p && !strcmp(p, "stop") && info)
        on_stop(info);
    mc_py.ErrClear();
    mc_py.IncRef(mc_py.None);
    return mc_py.None;
}

static struct mc_py_method callback_def = {"memcreep_gc", callback, MC_METH_VARARGS, NULL};

static PyObject *callback_fn; /* what was put in gc.callbacks */

int mc_py_garbage_start(void)
{
    if (!names) names = mc_sys_alloc(NAMES * sizeof(*names));
    PyObject *gc = mc_py.ImportModule("gc");
    if (!gc || !names) goto fail;
    gc_garbage = mc_py.GetAttrString(gc, "garbage");
    gc_get_debug = mc_py.GetAttrString(gc, "get_debug");
    gc_set_debug = mc_py.GetAttrString(gc, "set_debug");
    PyObject *cbs = mc_py.GetAttrString(gc, "callbacks");
    PyObject *fn = mc_py.CFunctionNewEx(&callback_def, NULL, NULL);
    int bad = !gc_garbage || !gc_get_debug || !gc_set_debug || !cbs || !fn ||
              mc_py.ListInsert(cbs, 0, fn) != 0;
    if (cbs) mc_py.DecRef(cbs);
    if (!bad)
        callback_fn = fn; /* kept, so that a detach finds it again */
    else if (fn)
        mc_py.DecRef(fn);
    mc_py.DecRef(gc);
    if (bad) goto fail;
    return 0;
fail:
    mc_py.ErrClear();
    return -1;
}

long long mc_py_garbage_take(void (*fn)(const char *name, long long n, void *arg), void *arg)
{
    for (uint32_t i = 0; i < nnames; i++)
        if (names[i].n) {
            fn(names[i].name, names[i].n, arg);
            names[i].n = 0;
        }
    long long t = total;
    total = 0;
    return t;
}

void mc_py_garbage_stop(void)
{
    if (!callback_fn) return;
    PyObject *gc = mc_py.ImportModule("gc");
    PyObject *cbs = gc ? mc_py.GetAttrString(gc, "callbacks") : NULL;
    long n = cbs ? mc_py.ListSize(cbs) : 0;
    for (long i = 0; i < n; i++)
        if (mc_py.ListGetItem(cbs, i) == callback_fn) {
            mc_py.ListSetSlice(cbs, i, i + 1, NULL);
            break;
        }
    if (cbs) mc_py.DecRef(cbs);
    if (gc) mc_py.DecRef(gc);
    mc_py.DecRef(callback_fn);
    callback_fn = NULL;
    mc_py.ErrClear();
}

void mc_py_garbage_reset(void)
{
    for (uint32_t i = 0; i < nnames; i++)
        names[i].n = 0;
    total = 0;
    ours = 0;
}
