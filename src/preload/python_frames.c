/* python_frames.c - the Python call stack of the calling thread, read
 * inside an allocation hook, so that an allocation is attributed to the
 * Python lines that made it.
 *
 * No Python API that allocates, locks or needs the GIL is called: the
 * thread's own state comes from PyGILState_GetThisThreadState (a
 * thread-specific value), its frames are read from CPython 3.11's layouts
 * (Include/internal/pycore_frame.h, Include/cpython/code.h), which only
 * this thread changes, and a line comes from PyCode_Addr2Line, which reads
 * the code object's immutable line table. The layout is checked once
 * against the running interpreter (mc_py_frames_check, on a probe function
 * whose code and line are known) before any hook reads a frame; another
 * version, or a failed check, leaves native stacks only, with one line in
 * the run's warnings.
 *
 * A frame is stored among the native ones as a tagged value (never a user
 * space address): MC_PYFRAME_TAG | slot << 24 | line, where slot is the
 * code object's entry in the mapping's code table (file, qualified name,
 * first line), so that stacks are symbolized after the program exits. */
#include <dlfcn.h>
#include <link.h>
#include <string.h>

#include "internal.h"
#include "python_api.h"

/* CPython 3.11 (x86_64): PyThreadState.cframe, _PyCFrame.current_frame,
 * _PyInterpreterFrame and PyCodeObject fields. */
#define TS_CFRAME         56
#define CF_CURRENT        8
#define IF_CODE           32
#define IF_PREVIOUS       48
#define IF_PREV_INSTR     56
#define IF_OWNER          69
#define CO_FIRSTLINE      72
#define CO_FILENAME       112
#define CO_QUALNAME       128
#define CO_FIRSTTRACEABLE 168
#define CO_CODE           184
#define OWNED_BY_GEN      1

static PyObject *(*this_thread_state)(void);
static int (*addr2line)(PyObject *, int);
static PyObject *code_type;
static int ready;                 /* the layout was checked: hooks may read frames */
static uint64_t eval_lo, eval_hi; /* _PyEval_EvalFrameDefault */

int mc_py_frames_on(void)
{
    return __atomic_load_n(&ready, __ATOMIC_ACQUIRE);
}

int mc_py_is_eval(uint64_t ip)
{
    return ip >= eval_lo && ip < eval_hi;
}

void mc_py_frames_init(void)
{
    const unsigned long *version = dlsym(RTLD_DEFAULT, "Py_Version");
    *(void **)&this_thread_state = dlsym(RTLD_DEFAULT, "PyGILState_GetThisThreadState");
    *(void **)&addr2line = dlsym(RTLD_DEFAULT, "PyCode_Addr2Line");
    code_type = dlsym(RTLD_DEFAULT, "PyCode_Type");
    void *eval = dlsym(RTLD_DEFAULT, "_PyEval_EvalFrameDefault");
    if (!this_thread_state || !addr2line || !code_type) return;
    if (!version || (*version >> 16) != 0x030b) {
        mc_warn("Python stacks need CPython 3.11; this interpreter gets native stacks only", NULL);
        return;
    }
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    if (eval && dladdr1(eval, &info, (void **)&sym, RTLD_DL_SYMENT) && sym) {
        eval_lo = (uint64_t)(uintptr_t)eval;
        eval_hi = eval_lo + sym->st_size;
    }
}

/* ---- the code table ---- */

static struct mc_shm_pycode *codes(void)
{
    return (struct mc_shm_pycode *)((char *)mc_shm + mc_lay.off_py_codes);
}

/* Copies a str's text as UTF-8 into out (NUL-terminated, cut at a
 * character boundary), from its compact representation (3.11's
 * PyASCIIObject / PyCompactUnicodeObject; a legacy string is "?"). */
static void str_copy(PyObject *s, char *out, size_t size)
{
    const char *o = (const char *)s;
    size_t at = 0;
    out[0] = 0;
    if (!s || !(MC_TP_FLAGS(MC_PY_TYPE(s)) & MC_TPF_UNICODE)) return;
    intptr_t len = *(const intptr_t *)(o + 16);
    uint8_t state = *(const uint8_t *)(o + 32);
    unsigned kind = (state >> 2) & 7, compact = (state >> 5) & 1, ascii = (state >> 6) & 1;
    if (!compact || len < 0) {
        memcpy(out, "?", 2);
        return;
    }
    const uint8_t *data = (const uint8_t *)(o + (ascii ? 48 : 72));
    for (intptr_t i = 0; i < len; i++) {
        uint32_t c = kind == 1   ? data[i]
                     : kind == 2 ? ((const uint16_t *)data)[i]
                                 : ((const uint32_t *)data)[i];
        char u[4];
        size_t n;
        if (c < 0x80) {
            u[0] = (char)c;
            n = 1;
        } else if (c < 0x800) {
            u[0] = (char)(0xc0 | c >> 6);
            u[1] = (char)(0x80 | (c & 0x3f));
            n = 2;
        } else if (c < 0x10000) {
            u[0] = (char)(0xe0 | c >> 12);
            u[1] = (char)(0x80 | (c >> 6 & 0x3f));
            u[2] = (char)(0x80 | (c & 0x3f));
            n = 3;
        } else {
            u[0] = (char)(0xf0 | c >> 18);
            u[1] = (char)(0x80 | (c >> 12 & 0x3f));
            u[2] = (char)(0x80 | (c >> 6 & 0x3f));
            u[3] = (char)(0x80 | (c & 0x3f));
            n = 4;
        }
        if (at + n >= size) break;
        memcpy(out + at, u, n);
        at += n;
    }
    out[at] = 0;
}

/* The code table slot of a code object, added when new (lock-free: a
 * slot is claimed by its key, then filled, then marked ready), or
 * UINT32_MAX when the table is full around it. The key mixes the code
 * object's address with its file, name and first line, so that a new code
 * object at a freed one's address gets a slot of its own. */
static uint32_t code_slot(PyObject *code)
{
    const char *c = (const char *)code;
    PyObject *file = *(PyObject *const *)(c + CO_FILENAME);
    PyObject *name = *(PyObject *const *)(c + CO_QUALNAME);
    int first = *(const int *)(c + CO_FIRSTLINE);
    uint64_t key = (uint64_t)(uintptr_t)code * 0x9e3779b97f4a7c15ull;
    key ^= ((uint64_t)(uintptr_t)file >> 3) * 0xc2b2ae3d27d4eb4full;
    key ^= ((uint64_t)(uintptr_t)name >> 3) * 0x165667b19e3779f9ull;
    key ^= (uint64_t)(uint32_t)first << 17;
    key |= 1;
    uint32_t mask = mc_lay.py_codes_cap - 1;
    struct mc_shm_pycode *t = codes();
    for (uint32_t probe = 0; probe < 64; probe++) {
        uint32_t s = (uint32_t)((key >> 20) + probe) & mask;
        if (mc_room_commit(&t[s], sizeof(t[s])) != 0) return UINT32_MAX;
        uint64_t k = __atomic_load_n(&t[s].key, __ATOMIC_ACQUIRE);
        if (k == key) return s;
        if (k) continue;
        uint64_t zero = 0;
        if (!__atomic_compare_exchange_n(&t[s].key, &zero, key, 0, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE)) {
            if (zero == key) return s;
            continue;
        }
        str_copy(file, t[s].file, sizeof(t[s].file));
        str_copy(name, t[s].name, sizeof(t[s].name));
        t[s].first_line = (uint32_t)first;
        __atomic_store_n(&t[s].ready, 1, __ATOMIC_RELEASE);
        __atomic_fetch_add(&mc_shm->py_codes_used, 1, __ATOMIC_RELAXED);
        return s;
    }
    return UINT32_MAX;
}

/* ---- lines ---- */

/* A per-thread cache of (code, offset) -> (line, slot): PyCode_Addr2Line
 * walks the line table from its start, the code table lookup touches
 * shared memory, and an allocation site repeats. An entry is checked by
 * the code object's address and the file and name it points to, so a new
 * code object at a freed one's address misses. */
#define LINE_CACHE 512

struct line_memo {
    const void *code, *file, *name;
    int off, line;
    uint32_t slot;
    uint32_t gen; /* MC_ATTACH_GEN(): slot is in that attach's mapping */
};

static __thread struct line_memo line_cache[LINE_CACHE];

static uint64_t frame_of(PyObject *code, int off)
{
    const char *c = (const char *)code;
    const void *file = *(const void *const *)(c + CO_FILENAME);
    const void *name = *(const void *const *)(c + CO_QUALNAME);
    uintptr_t h = ((uintptr_t)code >> 4) ^ (uintptr_t)off * 0x9e37u;
    struct line_memo *m = &line_cache[h & (LINE_CACHE - 1)];
    if (m->code != code || m->off != off || m->file != file || m->name != name ||
        m->gen != MC_ATTACH_GEN()) {
        int line = addr2line(code, off);
        if (line < 0) line = 0;
        if (line > 0xffffff) line = 0xffffff;
        m->code = code;
        m->file = file;
        m->name = name;
        m->off = off;
        m->line = line;
        m->slot = code_slot(code);
        m->gen = MC_ATTACH_GEN();
    }
    return MC_PYFRAME_TAG | (uint64_t)m->slot << 24 | (uint64_t)m->line;
}

int mc_py_frames(uint64_t *out, int max)
{
    PyObject *ts = this_thread_state();
    if (!ts) return 0;
    const char *cf = *(const char *const *)((const char *)ts + TS_CFRAME);
    const char *f = cf ? *(const char *const *)(cf + CF_CURRENT) : NULL;
    int n = 0;
    for (int guard = 0; f && n < max && guard < 4 * MC_MAX_DEPTH; guard++) {
        PyObject *code = *(PyObject *const *)(f + IF_CODE);
        if (!code || MC_PY_TYPE(code) != code_type) break;
        const char *first = (const char *)code + CO_CODE;
        const char *pi = *(const char *const *)(f + IF_PREV_INSTR);
        int traceable = *(const int *)((const char *)code + CO_FIRSTTRACEABLE);
        uint8_t owner = *(const uint8_t *)(f + IF_OWNER);
        /* A frame still being set up has run none of its own code. */
        if (owner == OWNED_BY_GEN || pi >= first + 2 * traceable)
            out[n++] = frame_of(code, (int)(pi - first));
        f = *(const char *const *)(f + IF_PREVIOUS);
    }
    return n;
}

/* The probe's frame, read as a hook would: its code object, and the line
 * the probe's source puts the call on. */
static PyObject *probe_code;
static int probe_line, probe_ok;

static PyObject *check_where(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    PyObject *ts = this_thread_state();
    const char *cf = ts ? *(const char *const *)((const char *)ts + TS_CFRAME) : NULL;
    const char *f = cf ? *(const char *const *)(cf + CF_CURRENT) : NULL;
    if (f) {
        PyObject *code = *(PyObject *const *)(f + IF_CODE);
        if (code == probe_code && MC_PY_TYPE(code) == code_type) {
            const char *first = (const char *)code + CO_CODE;
            const char *pi = *(const char *const *)(f + IF_PREV_INSTR);
            int line = addr2line(code, (int)(pi - first));
            probe_ok = line == probe_line;
        }
    }
    mc_py.IncRef(mc_py.None);
    return mc_py.None;
}

static struct mc_py_method check_def = {"_where", check_where, 0x0004, NULL};

void mc_py_frames_check(PyObject *globals)
{
    if (!this_thread_state || !addr2line || !code_type || !mc_lay.py_codes_cap) return;
    PyObject *fn = mc_py.DictGetItemString(globals, "_frame_probe");
    PyObject *line = mc_py.DictGetItemString(globals, "_frame_probe_line");
    PyObject *w = mc_py.CFunctionNewEx(&check_def, NULL, NULL);
    if (!fn || !line || !w || mc_py.DictSetItemString(globals, "_where", w) != 0) goto out;
    probe_code = mc_py.GetAttrString(fn, "__code__");
    probe_line = (int)mc_py.LongAsLongLong(line);
    PyObject *r = probe_code ? mc_py.CallObject(fn, NULL) : NULL;
    if (r) mc_py.DecRef(r);
    if (probe_ok)
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    else
        mc_warn("this Python's frames are not laid out as CPython 3.11's; native stacks only",
                NULL);
out:
    if (w) mc_py.DecRef(w);
    if (probe_code) mc_py.DecRef(probe_code);
    probe_code = NULL;
    mc_py.ErrClear();
}
