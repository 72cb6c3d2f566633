/* python_units.c - --unit MODULE:QUALNAME: each return of that Python
 * function (a worker's poll loop body, a request handler) counts as a unit
 * of work, with nothing changed in the program's code.
 *
 * A C profile function on every thread of the interpreter (CPython 3.11's
 * _PyEval_SetProfile, what sys.setprofile sets for one thread) sees each
 * return -- a yield and an exit by exception are returns too -- and adds
 * one to the mapping's work counter when the frame's code object is the
 * function's. It is set with no profile object, so sys.getprofile() still
 * reads None; a thread that already has a profile function (cProfile) is
 * left to it. While set, CPython runs every instruction through its
 * tracing path: the cost is in docs/benchmarks.md. Threads started later
 * are given the function at the bridge's next look (about every second). */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "python_api.h"

#define FRAME_F_FRAME 24 /* PyFrameObject.f_frame (3.11) */
#define IF_CODE       32 /* _PyInterpreterFrame.f_code */
#define TS_PROFILE    64 /* PyThreadState.c_profilefunc */
#define TRACE_RETURN  3  /* PyTrace_RETURN */

typedef int (*profile_fn)(PyObject *, PyObject *, int, PyObject *);

static int (*set_profile)(PyObject *, profile_fn, PyObject *);
static PyObject *(*interp_main)(void), *(*thread_head)(PyObject *), *(*thread_next)(PyObject *);
static char module[256], qualname[256];
static PyObject *target; /* the function's code object, a strong reference */
static int wanted, warned;

static int on_event(PyObject *obj, PyObject *frame, int what, PyObject *arg)
{
    (void)obj;
    (void)arg;
    if (what != TRACE_RETURN || !frame) return 0;
    const char *f = *(const char *const *)((const char *)frame + FRAME_F_FRAME);
    if (f && *(PyObject *const *)(f + IF_CODE) == target)
        __atomic_fetch_add(&mc_shm->work_units, 1, __ATOMIC_RELAXED);
    return 0;
}

int mc_py_units_wanted(void)
{
    return wanted;
}

void mc_py_units_init(void)
{
    const char *u = mc_getenv("MEMCREEP_PY_UNIT");
    const char *colon = u ? strchr(u, ':') : NULL;
    if (!colon || colon == u || !colon[1] || strlen(u) >= sizeof(module)) return;
    memcpy(module, u, (size_t)(colon - u));
    module[colon - u] = 0;
    strcpy(qualname, colon + 1);
    *(void **)&set_profile = dlsym(RTLD_DEFAULT, "_PyEval_SetProfile");
    *(void **)&interp_main = dlsym(RTLD_DEFAULT, "PyInterpreterState_Main");
    *(void **)&thread_head = dlsym(RTLD_DEFAULT, "PyInterpreterState_ThreadHead");
    *(void **)&thread_next = dlsym(RTLD_DEFAULT, "PyThreadState_Next");
    wanted = set_profile && interp_main && thread_head && thread_next;
    if (!wanted) mc_warn("--unit needs CPython 3.11's _PyEval_SetProfile; no units counted", u);
}

/* The function's code object, once its module is imported: the module
 * from sys.modules (never imported by memcreep), then each part of the
 * qualified name as an attribute. New reference or NULL. */
static PyObject *resolve(void)
{
    PyObject *mods = mc_py.ImportGetModuleDict();
    PyObject *o = mods ? mc_py.DictGetItemString(mods, module) : NULL;
    if (!o) return NULL;
    mc_py.IncRef(o);
    char part[256];
    const char *p = qualname;
    while (o && *p) {
        size_t n = strcspn(p, ".");
        memcpy(part, p, n);
        part[n] = 0;
        PyObject *next = mc_py.GetAttrString(o, part);
        mc_py.DecRef(o);
        o = next;
        p += n + (p[n] == '.');
    }
    PyObject *code = o ? mc_py.GetAttrString(o, "__code__") : NULL;
    if (o) mc_py.DecRef(o);
    mc_py.ErrClear();
    return code;
}

void mc_py_units_poll(void)
{
    if (!wanted || !mc_py_frames_on()) return;
    if (!target && !(target = resolve())) return;
    PyObject *interp = interp_main();
    for (PyObject *ts = interp ? thread_head(interp) : NULL; ts; ts = thread_next(ts)) {
        profile_fn cur = *(profile_fn *)((char *)ts + TS_PROFILE);
        if (cur == on_event) continue;
        if (cur) {
            if (!warned++)
                mc_warn("--unit: a thread has its own profile function (cProfile?); its "
                        "returns are not counted",
                        NULL);
            continue;
        }
        set_profile(ts, on_event, NULL);
    }
    mc_py.ErrClear();
}
