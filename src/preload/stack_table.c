/* stack_table.c - deduplicated call stacks and their counters, kept in the
 * shared mapping so the memcreep command reads them directly.
 *
 * The stacks are a dense array, slot 1, 2, ... in the order they were first
 * seen (slot 0 is the overflow slot), behind a small index: open addressing
 * of 8-byte entries, (32 bits of the frames' hash) << 32 | slot. So the
 * memory a run touches grows with the stacks it met, plus the index (8
 * bytes a slot): hashing the 64-byte records themselves over the whole
 * capacity touched nearly every page of them (and of their extensions)
 * once a few thousand stacks were in (10 MiB of nginx's 22).
 *
 * Lock-free: a writer claims an empty index entry with one compare-and-swap
 * (tag << 32, slot 0: being filled), takes the next slot, copies the frames
 * into the append-only frame pool, sets `ready`, then publishes the slot in
 * the entry. A thread that meets an entry being filled waits a bounded
 * number of spins and otherwise attributes its event to the overflow slot,
 * so no thread ever blocks on another. The counters themselves are updated
 * by counters.c. */
#include <sched.h>
#include <string.h>

#include "internal.h"

#define LOAD_MAX_NUM 3 /* stop taking new stacks at 3/4 full */
#define LOAD_MAX_DEN 4

/* An index entry whose stack could not be given a slot (the array is
 * full): lookups pass over it. */
#define SLOT_NONE 0xffffffffu

static inline struct mc_shm_stack *stacks(void)
{
    return (struct mc_shm_stack *)((char *)mc_shm + mc_lay.off_stacks);
}

static inline uint64_t *index_of(char *base)
{
    return (uint64_t *)(base + mc_lay.off_stack_index);
}

/* The index's tag of a hash: its high half, never 0 (an entry of tag 0 and
 * slot 0 would read as empty). */
static inline uint64_t tag_of(uint64_t h)
{
    uint64_t t = h >> 32;
    return (t ? t : 1) << 32;
}

/* Hash of a frame sequence: a multiply-xorshift mix of each address, then
 * the murmur finalizer; 0 and 1 are kept back (empty slot, overflow slot). */
static uint64_t frames_hash(const uint64_t *ips, int depth)
{
    uint64_t h = 0x84222325cbf29ce4ull ^ (uint64_t)depth;
    for (int i = 0; i < depth; i++) {
        h ^= ips[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h < 2 ? h + 2 : h;
}

static uint32_t overflow(void)
{
    __atomic_fetch_add(&mc_shm->lost_stacks, 1, __ATOMIC_RELAXED);
    return MC_STACK_OVERFLOW;
}

/* Waits (bounded) for an index entry another thread is filling. Returns
 * the entry once it has its slot, or 0. */
static uint64_t wait_slot(const uint64_t *e)
{
    for (int spins = 0; spins < 4096; spins++) {
        uint64_t v = __atomic_load_n(e, __ATOMIC_ACQUIRE);
        if ((uint32_t)v) return v;
        if (spins > 64) sched_yield();
    }
    return 0;
}

static int same_frames(const struct mc_shm_stack *st, const uint64_t *ips, int depth)
{
    if ((int)MC_FRAMES_DEPTH(st->frames) != depth) return 0;
    const uint64_t *f = (const uint64_t *)((const char *)mc_shm + mc_lay.off_frames);
    return memcmp(f + MC_FRAMES_OFF(st->frames), ips, (size_t)depth * sizeof(*ips)) == 0;
}

/* Gives the index entry e (just claimed for hash h) the next slot, fills
 * it and publishes both. Returns the slot, or the overflow slot when the
 * array or the frame pool is exhausted. */
static uint32_t fill_slot(uint64_t *e, uint64_t h, const uint64_t *ips, int depth)
{
    uint64_t n = __atomic_fetch_add(&mc_shm->stack_count, 1, __ATOMIC_RELAXED);
    if (n + 1 >= mc_lay.stack_cap ||
        mc_room_commit(&stacks()[n + 1], sizeof(struct mc_shm_stack)) != 0) {
        __atomic_store_n(e, tag_of(h) | SLOT_NONE, __ATOMIC_RELEASE);
        return overflow();
    }
    uint32_t i = (uint32_t)n + 1;
    struct mc_shm_stack *st = &stacks()[i];
    uint64_t off = __atomic_fetch_add(&mc_shm->frames_used, (uint64_t)depth, __ATOMIC_RELAXED);
    uint64_t *f = (uint64_t *)((char *)mc_shm + mc_lay.off_frames);
    struct mc_shm_stack_ext *ext =
        (struct mc_shm_stack_ext *)((char *)mc_shm + mc_lay.off_stack_ext);
    uint32_t *list = (uint32_t *)((char *)mc_shm + mc_lay.off_stack_list);
    st->hash = h;
    /* The frames and the slot's extension must have room; a slot that
     * cannot be filled is dead. (One without room in the list is simply
     * never listed, so never read.) */
    if (off + (uint64_t)depth > mc_lay.frame_cap ||
        mc_room_commit(f + off, (uint64_t)depth * sizeof(*ips)) != 0 ||
        mc_room_commit(&ext[i], sizeof(ext[i])) != 0) {
        st->frames = MC_DEPTH_DEAD;
        __atomic_store_n(&st->ready, 1, __ATOMIC_RELEASE);
        __atomic_store_n(e, tag_of(h) | i, __ATOMIC_RELEASE);
        return overflow();
    }
    memcpy(f + off, ips, (size_t)depth * sizeof(*ips));
    st->frames = (off << 16) | (uint64_t)depth;
    __atomic_store_n(&st->ready, 1, __ATOMIC_RELEASE);
    __atomic_store_n(e, tag_of(h) | i, __ATOMIC_RELEASE);
    if (mc_room_commit(&list[n], sizeof(*list)) == 0)
        __atomic_store_n(&list[n], i + 1, __ATOMIC_RELEASE);

    /* A frame in no known module means something was loaded since the
     * module list was last read (dlopen): read it again. Rare: only new
     * stacks get here. */
    for (int k = 0; k < depth; k++) {
        if (!mc_capture_known(ips[k])) {
            mc_publish_modules();
            break;
        }
    }
    return i;
}

int mc_stack_index_put(char *base, uint64_t h, uint32_t slot)
{
    uint64_t *idx = index_of(base);
    uint32_t mask = mc_lay.stack_cap - 1, i = (uint32_t)h & mask;
    for (uint32_t probes = 0; probes < mc_lay.stack_cap; probes++, i = (i + 1) & mask) {
        if (mc_room_commit(&idx[i], sizeof(*idx)) != 0) return -1;
        if (!idx[i]) {
            idx[i] = tag_of(h) | slot;
            return 0;
        }
    }
    return -1;
}

void mc_stack_mark_sampled(uint32_t slot, uint64_t mean)
{
    if (slot == MC_STACK_OVERFLOW || slot >= mc_lay.stack_cap) return;
    struct mc_shm_stack_ext *ext =
        (struct mc_shm_stack_ext *)((char *)mc_shm + mc_lay.off_stack_ext);
    if (__atomic_load_n(&ext[slot].sample_mean, __ATOMIC_RELAXED) != mean)
        __atomic_store_n(&ext[slot].sample_mean, mean, __ATOMIC_RELAXED);
}

uint32_t mc_stack_intern(const uint64_t *ips, int depth)
{
    if (depth <= 0) return overflow();
    uint64_t h = frames_hash(ips, depth), tag = tag_of(h);
    uint32_t cap = mc_lay.stack_cap, mask = cap - 1;
    uint32_t i = (uint32_t)h & mask;
    uint64_t *idx = index_of((char *)mc_shm);

    for (uint32_t probes = 0; probes < cap; probes++, i = (i + 1) & mask) {
        uint64_t *e = &idx[i];
        if (MC_UNLIKELY(mc_room_commit(e, sizeof(*e)) != 0)) return overflow();
        uint64_t cur = __atomic_load_n(e, __ATOMIC_ACQUIRE);
        if (cur == 0) {
            /* At 3/4 of the index the probe runs grow long: new stacks go
             * to the overflow slot. */
            uint64_t used = __atomic_load_n(&mc_shm->stack_count, __ATOMIC_RELAXED);
            if (used * LOAD_MAX_DEN >= (uint64_t)cap * LOAD_MAX_NUM) return overflow();
            if (__atomic_compare_exchange_n(e, &cur, tag, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                return fill_slot(e, h, ips, depth);
            /* Lost the race: cur now holds the winner's entry. */
        }
        if ((cur & ~0xffffffffull) != tag) continue;
        if (!(uint32_t)cur && !(cur = wait_slot(e))) return overflow();
        uint32_t slot = (uint32_t)cur;
        if (slot == SLOT_NONE) continue;
        const struct mc_shm_stack *st = &stacks()[slot];
        if (st->hash == h && same_frames(st, ips, depth)) return slot;
    }
    return overflow();
}
