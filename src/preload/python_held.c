/* python_held.c - what holds an object: the chain of referrers from the
 * outermost one found (a module global, or an object that only a running
 * function holds) down to it, as "__main__.Poller.seen > list".
 *
 * Found with the census' own list, in at most eight steps of one pass
 * over the tracked objects each (what gc.get_referrers does), frames and
 * cells left out. A step is named after the referrer: a module global by
 * module and name, an instance attribute by class and attribute, a
 * container by its type. Attributes are read without touching the object:
 * an instance dict where there is one; 3.11's inline values (instances
 * without a dict yet) through the class' shared keys, a layout checked at
 * start-up on a probe object and otherwise left unread -- asking for
 * vars() would give such an instance a dict it did not have. */
#include <string.h>

#include "internal.h"
#include "python_api.h"

#define STEPS 8
#define REFS  64 /* referrers looked at per step */

static int inline_ok; /* 3.11's inline values layout matches */

/* The split keys' entries of a class, and how many (3.11 layout:
 * Include/internal/pycore_dict.h, struct _dictkeysobject). */
static const PyObject *const *keys_entries(PyObject *type, long *n)
{
    const char *k = MC_HT_CACHED_KEYS(type);
    if (!k) return NULL;
    uint8_t log2_index_bytes = *(const uint8_t *)(k + 9), kind = *(const uint8_t *)(k + 10);
    *n = *(const intptr_t *)(k + 24);
    if (kind != 2 || *n < 0 || *n > 1024 || log2_index_bytes > 16) return NULL;
    return (const PyObject *const *)(k + 32 + ((size_t)1 << log2_index_bytes));
}

/* The name of the inline attribute of o that is value, or NULL. */
static const char *inline_attr(PyObject *o, PyObject *value)
{
    PyObject *type = MC_PY_TYPE(o);
    if (!inline_ok || !(MC_TP_FLAGS(type) & MC_TPF_MANAGED_DICT)) return NULL;
    PyObject *const *values = ((PyObject *const *const *)o)[-4];
    long n = 0;
    const PyObject *const *e = values ? keys_entries(type, &n) : NULL;
    for (long i = 0; e && i < n; i++)
        if (values[i] == value) {
            PyObject *key = (PyObject *)e[2 * i]; /* {me_key, me_value} */
            if (key && (MC_TP_FLAGS(MC_PY_TYPE(key)) & MC_TPF_UNICODE))
                return mc_py.UnicodeAsUTF8(key);
        }
    return NULL;
}

void mc_py_held_check(PyObject *probe, PyObject *value)
{
    inline_ok = 1;
    PyObject *type = MC_PY_TYPE(probe);
    const char *got = NULL;
    if ((MC_TP_FLAGS(type) & MC_TPF_MANAGED_DICT) && ((PyObject **)probe)[-3] == NULL)
        got = inline_attr(probe, value);
    inline_ok = got && !strcmp(got, "mc_probe");
    mc_py.ErrClear();
}

/* The instance dict of o, without making one, or NULL. */
static PyObject *dict_of(PyObject *o)
{
    PyObject *type = MC_PY_TYPE(o);
    if (MC_TP_FLAGS(type) & MC_TPF_MANAGED_DICT) return inline_ok ? ((PyObject **)o)[-3] : NULL;
    intptr_t off = MC_TP_DICTOFFSET(type);
    return off > 0 ? *(PyObject **)((char *)o + off) : NULL;
}

static int is_str(PyObject *o)
{
    return o && (MC_TP_FLAGS(MC_PY_TYPE(o)) & MC_TPF_UNICODE);
}

/* The str key under which dict d holds value, or NULL. */
static const char *key_of(PyObject *d, PyObject *value)
{
    long pos = 0;
    PyObject *k, *v;
    while (mc_py.DictNext(d, &pos, &k, &v))
        if (v == value) return is_str(k) ? mc_py.UnicodeAsUTF8(k) : NULL;
    return NULL;
}

/* The attribute of o that is value, or NULL. */
static const char *attr_of(PyObject *o, PyObject *value)
{
    PyObject *d = dict_of(o);
    return d ? key_of(d, value) : inline_attr(o, value);
}

static int is_container(PyObject *o)
{
    PyObject *t = MC_PY_TYPE(o);
    unsigned long f = MC_TP_FLAGS(t);
    if (f & (MC_TPF_LIST | MC_TPF_TUPLE | MC_TPF_DICT)) return 1;
    if (mc_py.TypeIsSubtype(t, mc_py.SetType) || mc_py.TypeIsSubtype(t, mc_py.FrozenSetType))
        return 1;
    return !strcmp(MC_TP_NAME(t), "collections.deque");
}

static int in(PyObject *const *set, int n, const PyObject *o)
{
    for (int i = 0; i < n; i++)
        if (set[i] == o) return 1;
    return 0;
}

/* The module whose globals d is: its name, or NULL. */
static const char *module_of(PyObject *d)
{
    PyObject *mods = mc_py.ImportGetModuleDict();
    long pos = 0;
    PyObject *k, *m;
    while (mods && mc_py.DictNext(mods, &pos, &k, &m))
        if (mc_py.TypeIsSubtype(MC_PY_TYPE(m), mc_py.ModuleType) && mc_py.ModuleGetDict(m) == d)
            return mc_py.ModuleGetName(m);
    return NULL;
}

/* Appends "a" to a " > "-joined list built outermost last (reversed at
 * the end). */
struct chain {
    char step[STEPS + 1][MC_PY_HELD];
    int n;
};

static void add_step(struct chain *ch, const char *a, const char *b)
{
    if (ch->n > STEPS) return;
    char *s = ch->step[ch->n++];
    size_t la = strlen(a);
    if (la > MC_PY_HELD - 1) la = MC_PY_HELD - 1;
    memcpy(s, a, la);
    s[la] = 0;
    if (b && la + 1 < MC_PY_HELD - 1) {
        s[la] = '.';
        size_t lb = strlen(b);
        if (lb > MC_PY_HELD - 2 - la) lb = MC_PY_HELD - 2 - la;
        memcpy(s + la + 1, b, lb);
        s[la + 1 + lb] = 0;
    }
}

void mc_py_held_by(const struct mc_py_census *c, PyObject *obj, char *out, size_t size)
{
    static struct chain ch; /* the bridge's thread only */
    PyObject *seen[2 * STEPS + 2], *refs[REFS];
    int nseen = 0;
    char tn[MC_PY_NAME];
    ch.n = 0;
    seen[nseen++] = obj;
    PyObject *cur = obj;
    for (int step = 0; step < STEPS; step++) {
        int nr = mc_py_referrers(c, cur, refs, REFS), pick = -1;
        for (int i = 0; i < nr; i++) {
            PyObject *t = MC_PY_TYPE(refs[i]);
            if (in(seen, nseen, refs[i]) || t == mc_py.FrameType || t == mc_py.CellType) continue;
            if (pick < 0) pick = i;
            if (is_container(refs[i])) {
                pick = i;
                break;
            }
        }
        if (pick < 0) break;
        PyObject *r = refs[pick];
        seen[nseen++] = r;
        if (MC_TP_FLAGS(MC_PY_TYPE(r)) & MC_TPF_DICT) {
            const char *k = key_of(r, cur), *mod = k ? module_of(r) : NULL;
            if (mod) { /* a module global: as far as it goes */
                add_step(&ch, mod, k);
                break;
            }
            PyObject *inst = NULL, *dr[REFS];
            int nd = k ? mc_py_referrers(c, r, dr, REFS) : 0;
            for (int i = 0; i < nd && !inst; i++)
                if (!in(seen, nseen, dr[i]) && dict_of(dr[i]) == r) inst = dr[i];
            if (inst) { /* an instance's attribute */
                mc_py_type_name(MC_PY_TYPE(inst), tn, sizeof(tn));
                add_step(&ch, tn, k);
                seen[nseen++] = inst;
                r = inst;
            } else {
                add_step(&ch, "dict", NULL);
            }
        } else if (is_container(r)) {
            mc_py_type_name(MC_PY_TYPE(r), tn, sizeof(tn));
            add_step(&ch, tn, NULL);
        } else {
            mc_py_type_name(MC_PY_TYPE(r), tn, sizeof(tn));
            add_step(&ch, tn, attr_of(r, cur));
        }
        cur = r;
    }
    mc_py.ErrClear();
    size_t at = 0;
    if (size) out[0] = 0;
    for (int i = ch.n - 1; i >= 0 && size; i--) {
        const char *s = ch.step[i];
        size_t l = strlen(s), sep = i == ch.n - 1 ? 0 : 3;
        if (at + sep + l >= size) break;
        memcpy(out + at, " > ", sep);
        memcpy(out + at + sep, s, l);
        at += sep + l;
        out[at] = 0;
    }
}
