/* stack_table.c - deduplicated call stacks and their counters, kept in the
 * shared mapping so the memcreep command reads them directly.
 *
 * Open addressing keyed by a 64-bit hash of the frames, lock-free: a writer
 * claims an empty slot with one compare-and-swap on its hash, copies the
 * frames into the append-only frame pool, then sets `ready`. A thread that
 * meets a slot being filled waits a bounded number of spins and otherwise
 * attributes its event to the overflow slot, so no thread ever blocks on
 * another. The counters themselves are updated by counters.c. */
#include <sched.h>
#include <string.h>

#include "internal.h"

#define LOAD_MAX_NUM 3 /* stop taking new stacks at 3/4 full */
#define LOAD_MAX_DEN 4

static inline struct mc_shm_stack *stacks(void)
{
    return (struct mc_shm_stack *)((char *)mc_shm + mc_lay.off_stacks);
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

/* Waits (bounded) for a slot another thread is filling. Returns 1 when it
 * became ready. */
static int wait_ready(struct mc_shm_stack *st)
{
    for (int spins = 0; spins < 4096; spins++) {
        if (__atomic_load_n(&st->ready, __ATOMIC_ACQUIRE)) return 1;
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

/* Fills a freshly claimed slot and publishes it. Returns the slot, or the
 * overflow slot when the frame pool is exhausted. */
static uint32_t fill_slot(uint32_t i, const uint64_t *ips, int depth)
{
    struct mc_shm_stack *st = &stacks()[i];
    uint64_t off = __atomic_fetch_add(&mc_shm->frames_used, (uint64_t)depth, __ATOMIC_RELAXED);
    uint64_t *f = (uint64_t *)((char *)mc_shm + mc_lay.off_frames);
    struct mc_shm_stack_ext *ext =
        (struct mc_shm_stack_ext *)((char *)mc_shm + mc_lay.off_stack_ext);
    uint32_t *list = (uint32_t *)((char *)mc_shm + mc_lay.off_stack_list);
    /* The frames and the slot's extension must have room; a slot that
     * cannot be filled is dead. (One without room in the list is simply
     * never listed, so never read.) */
    if (off + (uint64_t)depth > mc_lay.frame_cap ||
        mc_room_commit(f + off, (uint64_t)depth * sizeof(*ips)) != 0 ||
        mc_room_commit(&ext[i], sizeof(ext[i])) != 0) {
        st->frames = MC_DEPTH_DEAD;
        __atomic_store_n(&st->ready, 1, __ATOMIC_RELEASE);
        return overflow();
    }
    memcpy(f + off, ips, (size_t)depth * sizeof(*ips));
    st->frames = (off << 16) | (uint64_t)depth;
    __atomic_store_n(&st->ready, 1, __ATOMIC_RELEASE);

    uint64_t n = __atomic_fetch_add(&mc_shm->stack_count, 1, __ATOMIC_RELAXED);
    if (n < mc_lay.stack_cap && mc_room_commit(&list[n], sizeof(*list)) == 0)
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
    uint64_t h = frames_hash(ips, depth);
    uint32_t cap = mc_lay.stack_cap, mask = cap - 1;
    uint32_t i = (uint32_t)h & mask;
    struct mc_shm_stack *tab = stacks();

    for (uint32_t probes = 0; probes < cap; probes++, i = (i + 1) & mask) {
        if (i == MC_STACK_OVERFLOW) continue;
        struct mc_shm_stack *st = &tab[i];
        if (MC_UNLIKELY(mc_room_commit(st, sizeof(*st)) != 0)) return overflow();
        uint64_t cur = __atomic_load_n(&st->hash, __ATOMIC_ACQUIRE);
        if (cur == 0) {
            uint64_t used = __atomic_load_n(&mc_shm->stack_count, __ATOMIC_RELAXED);
            if (used * LOAD_MAX_DEN >= (uint64_t)cap * LOAD_MAX_NUM) return overflow();
            if (__atomic_compare_exchange_n(&st->hash, &cur, h, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE))
                return fill_slot(i, ips, depth);
            /* Lost the race: cur now holds the winner's hash. */
        }
        if (cur != h) continue;
        if (!wait_ready(st)) return overflow();
        if (same_frames(st, ips, depth)) return i;
    }
    return overflow();
}
