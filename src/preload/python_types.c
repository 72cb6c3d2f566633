/* python_types.c - the name memcreep gives a Python type: module.qualname,
 * as `f"{t.__module__}.{t.__qualname__}"` reads, builtins without module.
 * Read from the type object itself, with no attribute lookup that could
 * run Python code (a metaclass' __getattribute__). */
#include <string.h>

#include "internal.h"
#include "python_api.h"

/* "__module__", made once (the interpreter's str; no allocation after). */
static PyObject *module_key;

/* Writes "a.b" (or "b" when a is NULL) into out, cut to size. */
static void put(char *out, size_t size, const char *a, const char *b)
{
    size_t at = 0, lb = strlen(b);
    if (size == 0) return;
    if (a) {
        size_t la = strlen(a);
        if (la >= size) la = size - 1;
        memcpy(out, a, la);
        at = la;
        if (la && at + 1 < size) out[at++] = '.';
    }
    if (lb > size - 1 - at) lb = size - 1 - at;
    memcpy(out + at, b, lb);
    out[at + lb] = 0;
}

/* Static types carry "module.Name" (or "Name" for builtins) in tp_name,
 * which is what type.__module__ and __qualname__ are derived from. Heap
 * types (classes) keep __module__ in their dict and the qualified name
 * apart; before 3.11 (no PyType_GetQualName) their tp_name is used. */
void mc_py_type_name(PyObject *t, char *out, size_t size)
{
    const char *tpn = MC_TP_NAME(t);
    if (!tpn) tpn = "?";
    if (!(MC_TP_FLAGS(t) & MC_TPF_HEAPTYPE)) {
        put(out, size, NULL, tpn);
        return;
    }
    if (!module_key) module_key = mc_py.UnicodeFromString("__module__");
    PyObject *d = MC_TP_DICT(t);
    PyObject *m = d && module_key ? mc_py.DictGetItem(d, module_key) : NULL;
    const char *ms = NULL;
    if (m && (MC_TP_FLAGS(MC_PY_TYPE(m)) & MC_TPF_UNICODE)) ms = mc_py.UnicodeAsUTF8(m);
    if (ms && !strcmp(ms, "builtins")) ms = NULL;
    PyObject *q = mc_py.TypeGetQualName ? mc_py.TypeGetQualName(t) : NULL;
    const char *qs = q ? mc_py.UnicodeAsUTF8(q) : NULL;
    put(out, size, ms, qs ? qs : tpn);
    if (q) mc_py.DecRef(q);
    mc_py.ErrClear();
}
