/* unwind.c - the stack walk of every capture: each frame one lookup in a
 * table of unwind rules and two loads from the stack.
 *
 * libunwind's unw_backtrace takes ~130 ns for a 12-frame stack even when
 * its per-thread cache holds every frame: it first builds a cursor of all
 * registers (unw_getcontext, unw_init_local) and probes a hash table with
 * a long per-frame loop. Most frames of real code need only the rule of
 * cfi.c (CFA = rsp or rbp + offset, return address at CFA - 8, rbp saved
 * or kept), so the walk here keeps those rules in one table for all
 * threads, keyed by return address, filled from .eh_frame on first sight
 * and never changed after (a reader that sees an address sees its rule;
 * insert-only, so there is no lock and nothing to retry). Any frame whose
 * rule is not of that shape, or a step that does not go up the stack,
 * hands the whole capture to libunwind (mc_unwind returns -1), so the
 * stacks are the same as libunwind's: a signal frame, a realigned main, a
 * module without unwind tables.
 *
 * dlclose can put other code at an address the table knows: the hook
 * below empties the table after every dlclose.
 *
 * MEMCREEP_UNWIND_CHECK=1 walks every stack both ways and tells, at exit
 * and among the run's warnings, how many differed (and the first few,
 * frame by frame): the test of this walker on programs it was not written
 * for (docs/run.md, ENVIRONMENT). */
#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <libunwind.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define EXPORT __attribute__((visibility("default")))

#define RULE_CAP    (1u << 15) /* 512 KiB of address space, touched as used */
#define RULE_PROBES 8
#define CLAIMED     1ull /* a slot an inserting thread is filling */
#define MAX_STEP    (256ull << 20)

struct rule_slot {
    uint64_t ip;
    uint64_t rule;
};

static struct rule_slot *rules;

/* Spreads return addresses (clustered, 1-byte granular) over the table. */
static inline uint64_t ip_hash(uint64_t ip)
{
    ip ^= ip >> 31;
    ip *= 0xbf58476d1ce4e5b9ull;
    return ip ^ (ip >> 29);
}

/* The rule at ip: from the table, or computed (and kept) on a miss. A
 * table whose probe run is full computes it every time, which is slow but
 * still right. */
static uint64_t rule_of(uint64_t ip)
{
    struct rule_slot *t = __atomic_load_n(&rules, __ATOMIC_ACQUIRE);
    if (MC_UNLIKELY(!t)) return mc_cfi_rule(ip);
    uint64_t h = ip_hash(ip);
    for (int k = 0; k < RULE_PROBES; k++) {
        struct rule_slot *s = &t[(h + (uint64_t)k) & (RULE_CAP - 1)];
        uint64_t cur = __atomic_load_n(&s->ip, __ATOMIC_ACQUIRE);
        if (MC_LIKELY(cur == ip)) return __atomic_load_n(&s->rule, __ATOMIC_RELAXED);
        if (cur) continue;
        uint64_t r = mc_cfi_rule(ip);
        if (__atomic_compare_exchange_n(&s->ip, &cur, CLAIMED, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
            __atomic_store_n(&s->rule, r, __ATOMIC_RELAXED);
            __atomic_store_n(&s->ip, ip, __ATOMIC_RELEASE);
        }
        return r;
    }
    return mc_cfi_rule(ip);
}

/* The previous walk of this thread, frame by frame: the rule used at each
 * (return address, stack pointer). A frame of the new walk at the same
 * stack pointer with the same return address takes its rule from here, not
 * from the table: the rule is a function of the address alone, so this is
 * the table's answer, found without a hash or a miss. Successive stacks
 * of a thread share their outer frames (the event loop, the request
 * handler), so most frames of a walk are found here; and since the memo's
 * entries sit in order, the loads of one frame do not wait for the
 * previous frame's lookup. Two buffers: the walk reads one and writes the
 * other. Frames past MEMO_FRAMES use the table. */
#define MEMO_FRAMES 80

struct memo_frame {
    uint64_t ip, sp, rule;
};

struct memo {
    uint32_t n[2];
    uint32_t gen[2];
    uint32_t cur;
    struct memo_frame f[2][MEMO_FRAMES];
};

static __thread struct memo tl_memo TLS_FAST;
static uint32_t rules_gen; /* bumped when dlclose empties the table */

int mc_unwind(uint64_t *ips, int max, int stop_eval, int *cut)
{
    uint64_t ip, sp, bp;
    /* This instruction's address and the registers at it: the walk's
     * first frame is this function's own, described by its own FDE. */
    __asm__ volatile("leaq 0(%%rip), %0\n\t"
                     "movq %%rsp, %1\n\t"
                     "movq %%rbp, %2"
                     : "=r"(ip), "=r"(sp), "=r"(bp));
    struct memo *m = &tl_memo;
    uint32_t gen = __atomic_load_n(&rules_gen, __ATOMIC_ACQUIRE);
    uint32_t old = m->cur, nw = old ^ 1;
    const struct memo_frame *prev = m->f[old];
    struct memo_frame *next = m->f[nw];
    uint32_t np = m->gen[old] == gen ? m->n[old] : 0, at = 0;
    int n = 0, bp_lost = 0, frame;
    *cut = 0;
    for (frame = 0; n < max; frame++) {
        if (frame) {
            if (stop_eval && mc_py_is_eval(ip)) {
                *cut = 1;
                break;
            }
            ips[n++] = ip;
        }
        while (at < np && prev[at].sp < sp)
            at++;
        uint64_t r;
        if (at < np && prev[at].sp == sp && prev[at].ip == ip)
            r = prev[at].rule;
        else
            /* A return address is one past the call: its rule is the call's. */
            r = rule_of(frame ? ip - 1 : ip);
        if (frame < MEMO_FRAMES) next[frame] = (struct memo_frame){ip, sp, r};
        if (MC_RULE_KIND(r) == MC_RULE_END) break;
        if (MC_RULE_KIND(r) != MC_RULE_STEP) return -1;
        uint64_t cfa;
        if (r & MC_RULE_CFA_RBP) {
            if (bp_lost) return -1;
            cfa = bp + MC_RULE_CFA_OFF(r);
        } else {
            cfa = sp + MC_RULE_CFA_OFF(r);
        }
        if (cfa <= sp || cfa - sp > MAX_STEP) return -1;
        uint64_t ra = *(const uint64_t *)(uintptr_t)(cfa - 8);
        if (r & MC_RULE_RBP_SAVED)
            bp = *(const uint64_t *)(uintptr_t)(cfa + (uint64_t)(int64_t)MC_RULE_RBP_OFF(r));
        else if (r & MC_RULE_RBP_LOST)
            bp_lost = 1;
        sp = cfa;
        ip = ra;
        if (ip < 4096) break; /* the outermost frame's return address: 0 */
    }
    m->n[nw] = (uint32_t)(frame < MEMO_FRAMES ? frame : MEMO_FRAMES);
    m->gen[nw] = gen;
    m->cur = nw;
    return n;
}

/* ---- the comparison with libunwind (MEMCREEP_UNWIND_CHECK=1) ---- */

int mc_unwind_check_on;
static uint64_t checked, differed, fell_back;

/* Tells one differing capture: both walks side by side, a line each. */
static void show(const uint64_t *a, int na, void *const *b, int nb)
{
    char line[160];
    snprintf(line, sizeof(line), "fast walk %d frames, libunwind %d", na, nb);
    mc_warn("unwind check", line);
    for (int i = 0; i < na || i < nb; i++) {
        snprintf(line, sizeof(line), "%2d %#18llx %#18llx%s", i,
                 i < na ? (unsigned long long)a[i] : 0ull,
                 i < nb ? (unsigned long long)(uintptr_t)b[i] : 0ull,
                 i < na && i < nb && a[i] == (uint64_t)(uintptr_t)b[i] ? "" : "  <");
        mc_warn("unwind check", line);
    }
}

void mc_unwind_check(const uint64_t *fast, int n, int fallback, void *const *slow, int m)
{
    __atomic_fetch_add(&checked, 1, __ATOMIC_RELAXED);
    if (fallback) {
        __atomic_fetch_add(&fell_back, 1, __ATOMIC_RELAXED);
        return;
    }
    int same = n == m;
    for (int i = 0; same && i < n; i++)
        same = fast[i] == (uint64_t)(uintptr_t)slow[i];
    if (same) return;
    if (__atomic_fetch_add(&differed, 1, __ATOMIC_RELAXED) < 5) show(fast, n, slow, m);
}

static void check_report(void)
{
    char line[160];
    snprintf(line, sizeof(line), "%llu captures, %llu differed, %llu left to libunwind",
             (unsigned long long)checked, (unsigned long long)differed,
             (unsigned long long)fell_back);
    mc_warn("unwind check", line);
}

void mc_unwind_init(void)
{
    /* Once: an attach after a detach keeps the rules learnt (they are the
     * code's, which has not changed; a dlclose empties them). */
    if (rules) return;
    rules = mc_sys_alloc(RULE_CAP * sizeof(struct rule_slot));
    if (mc_env_u64("MEMCREEP_UNWIND_CHECK", 0)) {
        mc_unwind_check_on = 1;
        atexit(check_report);
    }
}

/* ---- dlclose: forget the rules of the code that may have gone ---- */

typedef int (*dlclose_fn)(void *);

EXPORT int dlclose(void *handle)
{
    static dlclose_fn real_dlclose;
    dlclose_fn f = __atomic_load_n(&real_dlclose, __ATOMIC_ACQUIRE);
    if (MC_UNLIKELY(!f)) {
        f = (dlclose_fn)dlsym(RTLD_NEXT, "dlclose");
        __atomic_store_n(&real_dlclose, f, __ATOMIC_RELEASE);
    }
    int rc = f ? f(handle) : -1;
    struct rule_slot *t = __atomic_load_n(&rules, __ATOMIC_ACQUIRE);
    /* Only slots in use are written: the untouched pages stay unmapped. A
     * walk racing with this would be in code that dlclose just unmapped,
     * which the program cannot be. */
    for (uint32_t i = 0; t && i < RULE_CAP; i++) {
        uint64_t cur = __atomic_load_n(&t[i].ip, __ATOMIC_ACQUIRE);
        if (cur <= CLAIMED) continue; /* empty, or being filled for live code */
        /* The rule first: a walk that still sees the address then reads
         * MC_RULE_OTHER and asks libunwind; once the address is gone an
         * inserter may take the slot, and nothing here writes it again. */
        __atomic_store_n(&t[i].rule, MC_RULE_OTHER, __ATOMIC_RELEASE);
        __atomic_compare_exchange_n(&t[i].ip, &cur, 0, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
    }
    __atomic_fetch_add(&rules_gen, 1, __ATOMIC_RELEASE); /* and the threads' memos */
    return rc;
}
