/* sites.c - stacks that print the same are one site.
 *
 * The preload tells stacks apart by their return addresses. A compiler
 * that emits a loop twice (unswitched, peeled, unrolled), or a macro
 * expanded twice on one line, gives one line of source two return
 * addresses, and a cache filled by one copy and refreshed by the other
 * then looks like one stack that grows and another that shrinks by as
 * much. Judged apart, the first is CREEP; the program has one cache, and
 * its author sees two identical rows. So before any verdict, the stacks of
 * a process are grouped by what they print (every frame's function, file
 * and line, or module and offset where there is no line; Python frames by
 * function, file and line) and each group's series are added into its
 * first stack: one row, one series, one verdict. */
#include <stdlib.h>
#include <string.h>

#include "analysis/sites.h"

/* FNV-1a, 64 bits, over a string and its terminating NUL (so that "ab","c"
 * and "a","bc" differ). Two different chains share a key with probability
 * about n^2 / 2^65 for n stacks: nil at the few thousand a process has. */
static uint64_t mix(uint64_t h, const char *s)
{
    do {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    } while (*s++);
    return h;
}

static uint64_t mix_u64(uint64_t h, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8) {
        h ^= v & 0xff;
        h *= 0x100000001b3ull;
    }
    return h;
}

/* The key of what the stack at slot prints; 0 when it has no frames. */
static uint64_t stack_key(struct mc_proc *p, uint32_t slot, struct mc_symbolizer *sym)
{
    const uint64_t *f;
    const struct mc_shm_stack *st = mc_map_stack(&p->map, slot);
    uint32_t depth = st ? mc_map_frames(&p->map, st, &f) : 0;
    if (!depth) return 0;
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint32_t i = 0; i < depth; i++) {
        if (MC_IS_PYFRAME(f[i])) {
            char name[128] = "??", file[256] = "";
            mc_map_pycode(&p->map, MC_PYFRAME_SLOT(f[i]), name, sizeof(name), file, sizeof(file));
            h = mix(mix(mix(h, "py"), name), file);
            h = mix_u64(h, MC_PYFRAME_LINE(f[i]));
            continue;
        }
        struct mc_frame fr[8];
        int nf = mc_symbolize(sym, p->mods, p->nmods, f[i], fr, 8);
        for (int k = 0; k < nf; k++) {
            h = mix(mix(h, fr[k].function), fr[k].module);
            if (fr[k].file[0])
                h = mix_u64(mix(h, fr[k].file), (uint64_t)fr[k].line);
            else
                h = mix_u64(h, fr[k].offset);
            h = mix(h, fr[k].inlined ? "i" : "");
        }
    }
    return h ? h : 1;
}

/* Adds the series and values of slot b into slot a, and forgets b. */
static void merge(struct mc_proc *p, uint32_t a, uint32_t b)
{
    struct mc_stack_series *x = p->stk[a], *y = p->stk[b];
    for (uint32_t i = 0; i < MC_SERIES_MAX; i++) {
        x->bytes[i] += y->bytes[i];
        x->count[i] += y->count[i];
        x->fds[i] += y->fds[i];
    }
    if (y->sample_mean > x->sample_mean) x->sample_mean = y->sample_mean;
    x->merged += 1 + y->merged;
    p->vals[a].live_bytes += p->vals[b].live_bytes;
    p->vals[a].live_count += p->vals[b].live_count;
    p->vals[a].allocs += p->vals[b].allocs;
    p->vals[a].alloc_bytes += p->vals[b].alloc_bytes;
    memset(&p->vals[b], 0, sizeof(p->vals[b]));
    free(y);
    p->stk[b] = NULL;
}

struct entry {
    uint64_t key; /* 0: free */
    uint32_t slot;
};

int mc_sites_merge(struct mc_proc *p, struct mc_symbolizer *sym)
{
    if (!p->has_map || !p->stk_cap) return 0;
    mc_proc_modules(p);
    size_t cap = 64;
    while (cap < 2 * (size_t)p->stk_cap)
        cap *= 2;
    struct entry *t = calloc(cap, sizeof(*t));
    if (!t) return -1;
    int merged = 0;
    for (uint32_t slot = 0; slot < p->stk_cap; slot++) {
        if (!p->stk[slot]) continue;
        uint64_t key = stack_key(p, slot, sym);
        if (!key) continue;
        size_t i = (size_t)(key * 0x9e3779b97f4a7c15ull >> 17) & (cap - 1);
        while (t[i].key && t[i].key != key)
            i = (i + 1) & (cap - 1);
        if (!t[i].key) {
            t[i] = (struct entry){key, slot};
            continue;
        }
        merge(p, t[i].slot, slot);
        merged++;
    }
    free(t);
    return merged;
}
