/* counters.c - per-stack counters, updated through per-thread slabs.
 *
 * Each thread claims a slab in the shared mapping at its first event and
 * adds its allocations and frees to the slab's entry for the stack, with
 * plain stores: no atomic operation and no cache line shared with another
 * thread on the hot path. shm_format.h describes the slab protocol and how
 * the reader combines slabs with the stacks' own counters. A thread that
 * cannot get a slab (all taken) updates the counters atomically instead. */
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

static __thread struct mc_shm_thread *tl_slab TLS_FAST;
static __thread int tl_no_slab TLS_FAST;
static __thread uint32_t tl_gen TLS_FAST; /* the attach tl_slab belongs to */
static pthread_key_t exit_key;
static int have_key;

static inline struct mc_shm_stack *stack_at(struct mc_shm_header *h, uint32_t slot)
{
    return (struct mc_shm_stack *)((char *)h + mc_lay.off_stacks) + slot;
}

static inline struct mc_shm_thread *slabs(struct mc_shm_header *h)
{
    return (struct mc_shm_thread *)((char *)h + mc_lay.off_threads);
}

/* Adds an entry's deltas to its stack's counters and empties it. */
static void drain(struct mc_shm_header *h, struct mc_shm_delta *d)
{
    if (!d->slot1) return;
    struct mc_shm_stack *st = stack_at(h, d->slot1 - 1);
    if (mc_room_commit(st, sizeof(*st)) != 0) return; /* counted as room lost */
    __atomic_fetch_add(&st->live_bytes, d->live_bytes, __ATOMIC_RELAXED);
    __atomic_fetch_add(&st->live_count, d->live_count, __ATOMIC_RELAXED);
    __atomic_fetch_add(&st->allocs, d->allocs, __ATOMIC_RELAXED);
    __atomic_fetch_add(&st->alloc_bytes, d->alloc_bytes, __ATOMIC_RELAXED);
    __atomic_store_n(&d->live_bytes, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&d->live_count, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&d->allocs, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&d->alloc_bytes, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&d->slot1, 0, __ATOMIC_RELAXED);
}

/* Odd seq tells a reader an eviction is under way (shm_format.h). */
static inline void seq_begin(struct mc_shm_thread *t)
{
    __atomic_store_n(&t->seq, t->seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static inline void seq_end(struct mc_shm_thread *t)
{
    __atomic_store_n(&t->seq, t->seq + 1, __ATOMIC_RELEASE);
}

/* Thread exit: hand the slab's deltas to the counters and free it. */
static void release_slab(void *arg)
{
    struct mc_shm_thread *t = arg;
    /* A slab of an attach since detached lies in memory that is no longer
     * the mapping: nothing is written there. */
    if (!t || !mc_shm || t != tl_slab || tl_gen != MC_ATTACH_GEN() ||
        (MC_ATTACH_GEN() && !mc_active)) {
        tl_slab = NULL;
        return;
    }
    seq_begin(t);
    for (int i = 0; i < MC_SLAB_ENTRIES; i++)
        drain(mc_shm, &t->e[i]);
    seq_end(t);
    __atomic_store_n(&t->owner, 0, __ATOMIC_RELEASE);
    tl_slab = NULL;
}

static struct mc_shm_thread *claim(void)
{
    if (tl_no_slab) return NULL;
    struct mc_shm_header *h = mc_shm;
    uint32_t tid = (uint32_t)syscall(SYS_gettid);
    struct mc_shm_thread *t = slabs(h);
    for (uint32_t i = 0; i < mc_lay.thread_cap; i++) {
        uint32_t free_owner = 0;
        if (mc_room_commit(&t[i], sizeof(t[i])) != 0) break;
        if (__atomic_load_n(&t[i].owner, __ATOMIC_RELAXED) != 0) continue;
        if (!__atomic_compare_exchange_n(&t[i].owner, &free_owner, tid, 0, __ATOMIC_ACQ_REL,
                                         __ATOMIC_RELAXED))
            continue;
        uint32_t used = __atomic_load_n(&h->threads_used, __ATOMIC_RELAXED);
        while (used < i + 1 && !__atomic_compare_exchange_n(&h->threads_used, &used, i + 1, 0,
                                                            __ATOMIC_RELEASE, __ATOMIC_RELAXED))
            ;
        tl_slab = &t[i];
        if (have_key) pthread_setspecific(exit_key, tl_slab);
        return tl_slab;
    }
    tl_no_slab = 1; /* all taken: this thread updates counters directly */
    return NULL;
}

/* The entry of this thread's slab for slot, evicting another slot's. */
static inline struct mc_shm_delta *entry(uint32_t slot)
{
    struct mc_shm_thread *t = tl_slab;
    if (MC_UNLIKELY(tl_gen != MC_ATTACH_GEN())) {
        /* A slab of an earlier attach's mapping, long gone. */
        t = tl_slab = NULL;
        tl_no_slab = 0;
        tl_gen = MC_ATTACH_GEN();
    }
    if (MC_UNLIKELY(!t) && !(t = claim())) return NULL;
    struct mc_shm_delta *d = &t->e[slot & (MC_SLAB_ENTRIES - 1)];
    if (MC_UNLIKELY(d->slot1 != slot + 1)) {
        seq_begin(t);
        drain(mc_shm, d);
        __atomic_store_n(&d->slot1, slot + 1, __ATOMIC_RELAXED);
        seq_end(t);
    }
    return d;
}

#define BUMP(field, by) __atomic_store_n(&(field), (field) + (by), __ATOMIC_RELAXED)

void mc_stack_alloc(uint32_t slot, size_t bytes, int64_t count)
{
    struct mc_shm_delta *d = entry(slot);
    if (MC_LIKELY(d != NULL)) {
        BUMP(d->live_bytes, (int64_t)bytes);
        BUMP(d->live_count, count);
        BUMP(d->allocs, (uint64_t)count);
        BUMP(d->alloc_bytes, (uint64_t)bytes);
        return;
    }
    struct mc_shm_stack *st = stack_at(mc_shm, slot);
    __atomic_fetch_add(&st->live_bytes, (int64_t)bytes, __ATOMIC_RELAXED);
    __atomic_fetch_add(&st->live_count, count, __ATOMIC_RELAXED);
    __atomic_fetch_add(&st->allocs, (uint64_t)count, __ATOMIC_RELAXED);
    __atomic_fetch_add(&st->alloc_bytes, (uint64_t)bytes, __ATOMIC_RELAXED);
}

void mc_stack_free(uint32_t slot, size_t bytes, int64_t count)
{
    struct mc_shm_delta *d = entry(slot);
    if (MC_LIKELY(d != NULL)) {
        BUMP(d->live_bytes, -(int64_t)bytes);
        BUMP(d->live_count, -count);
        return;
    }
    struct mc_shm_stack *st = stack_at(mc_shm, slot);
    __atomic_fetch_sub(&st->live_bytes, (int64_t)bytes, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&st->live_count, count, __ATOMIC_RELAXED);
}

void mc_count_connect(void)
{
    if (mc_publish_own() != 0) return;
    uint64_t ips[MC_MAX_DEPTH];
    int d = mc_capture(ips, MC_DEFAULT_DEPTH);
    struct mc_shm_stack *st = stack_at(mc_shm, mc_stack_intern(ips, d));
    __atomic_fetch_add(&st->connects, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&mc_shm->connects, 1, __ATOMIC_RELAXED);
}

void mc_count_thread(uint32_t slot)
{
    __atomic_fetch_add(&stack_at(mc_shm, slot)->threads, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&mc_shm->threads_created, 1, __ATOMIC_RELAXED);
}

void mc_counters_init(void)
{
    if (have_key) return; /* once: an attach after a detach keeps the key */
    have_key = pthread_key_create(&exit_key, release_slab) == 0;
}

void mc_counters_fold(struct mc_shm_header *h)
{
    struct mc_shm_thread *t = slabs(h);
    for (uint32_t i = 0; i < h->threads_used && i < mc_lay.thread_cap; i++) {
        for (int k = 0; k < MC_SLAB_ENTRIES; k++)
            drain(h, &t[i].e[k]);
        t[i].owner = 0;
        t[i].seq = 0;
    }
    h->threads_used = 0;
}

void mc_counters_forget_thread(void)
{
    tl_slab = NULL;
    tl_no_slab = 0;
}
