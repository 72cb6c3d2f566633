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

/* One chain being built: its steps innermost first, the object whose
 * referrers come next, what it met (never gone back to). */
struct chain {
    char step[STEPS + 1][MC_PY_HELD];
    int n, done;
    PyObject *cur, *dict, *seen[2 * STEPS + 2];
    const char *key; /* the key under which dict holds cur */
    int nseen;
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

/* The referrer to follow: the first container, else the first one. */
static PyObject *pick(struct chain *ch, PyObject *const *refs, int nr)
{
    PyObject *first = NULL;
    for (int i = 0; i < nr; i++) {
        PyObject *t = MC_PY_TYPE(refs[i]);
        if (in(ch->seen, ch->nseen, refs[i]) || t == mc_py.FrameType || t == mc_py.CellType)
            continue;
        if (is_container(refs[i])) return refs[i];
        if (!first) first = refs[i];
    }
    return first;
}

/* Writes a chain's steps, outermost first, into out. */
static void join(const struct chain *ch, char *out, size_t size)
{
    size_t at = 0;
    out[0] = 0;
    for (int i = ch->n - 1; i >= 0; i--) {
        const char *s = ch->step[i];
        size_t l = strlen(s), sep = i == ch->n - 1 ? 0 : 3;
        if (at + sep + l >= size) break;
        memcpy(out + at, " > ", sep);
        memcpy(out + at + sep, s, l);
        at += sep + l;
        out[at] = 0;
    }
}

/* Each step is one pass over the heap for every chain still going (the
 * referrers of its current object), and one more for the chains that met
 * a dict that is not a module's (the instance whose dict it is). */
void mc_py_held_by(const struct mc_py_census *c, PyObject *const *objs, int n, char **outs)
{
    static struct chain ch[MC_PY_CHAINS]; /* the bridge's thread only */
    static PyObject *refs[MC_PY_CHAINS][MC_PY_REFS];
    PyObject *targets[MC_PY_CHAINS];
    int counts[MC_PY_CHAINS];
    char tn[MC_PY_NAME];
    if (n > MC_PY_CHAINS) n = MC_PY_CHAINS;
    for (int j = 0; j < n; j++) {
        ch[j].n = ch[j].done = ch[j].nseen = 0;
        ch[j].cur = objs[j];
        ch[j].seen[ch[j].nseen++] = objs[j];
    }
    for (int step = 0; step < STEPS; step++) {
        int going = 0;
        for (int j = 0; j < n; j++) {
            targets[j] = ch[j].done ? NULL : ch[j].cur;
            going += !ch[j].done;
        }
        if (!going) break;
        mc_py_referrers(c, targets, n, refs, counts);
        int dicts = 0;
        for (int j = 0; j < n; j++) {
            struct chain *h = &ch[j];
            h->dict = NULL;
            if (h->done) continue;
            PyObject *r = pick(h, refs[j], counts[j]);
            if (!r) {
                h->done = 1;
                continue;
            }
            h->seen[h->nseen++] = r;
            if (MC_TP_FLAGS(MC_PY_TYPE(r)) & MC_TPF_DICT) {
                const char *k = key_of(r, h->cur), *mod = k ? module_of(r) : NULL;
                if (mod) { /* a module global: as far as it goes */
                    add_step(h, mod, k);
                    h->done = 1;
                } else if (k) { /* whose dict? one more pass, below */
                    h->dict = r;
                    h->key = k;
                    dicts++;
                } else {
                    add_step(h, "dict", NULL);
                }
            } else if (is_container(r)) {
                mc_py_type_name(MC_PY_TYPE(r), tn, sizeof(tn));
                add_step(h, tn, NULL);
            } else {
                mc_py_type_name(MC_PY_TYPE(r), tn, sizeof(tn));
                add_step(h, tn, attr_of(r, h->cur));
            }
            h->cur = r;
        }
        if (!dicts) continue;
        for (int j = 0; j < n; j++)
            targets[j] = ch[j].dict;
        mc_py_referrers(c, targets, n, refs, counts);
        for (int j = 0; j < n; j++) {
            struct chain *h = &ch[j];
            if (!h->dict) continue;
            PyObject *inst = NULL;
            for (int i = 0; i < counts[j] && !inst; i++)
                if (!in(h->seen, h->nseen, refs[j][i]) && dict_of(refs[j][i]) == h->dict)
                    inst = refs[j][i];
            if (inst) { /* an instance's attribute */
                mc_py_type_name(MC_PY_TYPE(inst), tn, sizeof(tn));
                add_step(h, tn, h->key);
                h->seen[h->nseen++] = inst;
                h->cur = inst;
            } else {
                add_step(h, "dict", NULL);
            }
        }
    }
    mc_py.ErrClear();
    for (int j = 0; j < n; j++)
        join(&ch[j], outs[j], MC_PY_HELD);
}
