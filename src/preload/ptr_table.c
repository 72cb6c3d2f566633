/* ptr_table.c - the live-pointer table: which stack allocated each live
 * block, and how big it is, so that free() can take the bytes back from the
 * right stack.
 *
 * Private memory (not shared): the reader never needs it, only the counters
 * it feeds. Sharded by address into MC_SHARDS open-addressing tables, each
 * with its own spinlock, so threads rarely meet: there is no global lock on
 * the allocation path. Deletion is by backward shift (Knuth 6.4, algorithm
 * R), so no tombstones accumulate in a long run. Tables grow by doubling
 * from mmap'd memory, within a total budget (MEMCREEP_PTR_TABLE_MB); past it
 * new blocks go untracked and are counted in the header's lost_ptrs.
 *
 * When allocations are sampled, most freed blocks were never recorded, and
 * taking a lock only to find nothing would cost more than the sampling
 * saves. So each shard also carries a sequence count (odd while a writer
 * changes it) and mc_ptr_maybe_known() looks without the lock, trusting
 * what it saw only if the count did not move. A table replaced by a larger
 * one is never unmapped, so such a reader can never touch freed memory; the
 * old tables add up to less than the live one. */
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define MC_SHARDS 256
/* Small first tables: 256 shards of 64 entries are 256 KiB, which stays in
 * the L2 cache beside the program's data; at 512 they were 2 MiB, and every
 * insert and remove missed it. */
#define MC_SHARD_MIN 64
/* meta: the size as hooks.c tags it (36 bits: the size, then MC_BURST and
 * MC_OBJ in bits 34 and 35), the epoch (4 bits), the stack slot (24). */
#define MC_SIZE_BITS  36
#define MC_SIZE_MASK  ((1ull << MC_SIZE_BITS) - 1)
#define MC_EPOCH_MASK 0xfull
#define MC_SLOT_SHIFT 40
#define MC_TAG_FREE   (MC_TAG_BURST - 1)

struct mc_ptr_entry {
    uintptr_t ptr; /* 0 = empty */
    uint64_t meta; /* tagged size | epoch << 36 | stack slot << 40 */
};

/* The epoch of new blocks: the rest thread sets it (mc_ptr_set_epoch) when
 * memcreep starts one; a private copy, so the allocation path reads no
 * line of the shared header that other threads write. */
static uint32_t epoch_now;

struct mc_shard {
    atomic_uint lock;
    uint32_t count;
    uint64_t cap; /* power of two, 0 until first use */
    struct mc_ptr_entry *e;
    uint32_t seq; /* odd while the owner of the lock changes the table */
    char pad[64 - 28];
};

static struct mc_shard shards[MC_SHARDS];
/* Tables replaced by larger ones, for mc_ptr_reset to give back. */
#define MC_RETIRED (MC_SHARDS * 32)
static struct {
    void *p;
    size_t bytes;
} retired[MC_RETIRED];
static uint32_t nretired;
static atomic_size_t table_bytes;
static size_t budget_bytes;

/* MurmurHash3's 64-bit finalizer: every input bit reaches every output bit,
 * so page-aligned blocks (low bits all zero) still spread over the whole
 * table; the top byte picks the shard, the low bits the slot. */
static inline uint64_t ptr_hash(uintptr_t p)
{
    uint64_t h = (uint64_t)p;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static inline void shard_lock(struct mc_shard *s)
{
    unsigned spins = 0;
    while (atomic_exchange_explicit(&s->lock, 1, memory_order_acquire)) {
        if (++spins > 256) {
            sched_yield();
            spins = 0;
        } else {
            __builtin_ia32_pause();
        }
    }
}

static inline void shard_unlock(struct mc_shard *s)
{
    atomic_store_explicit(&s->lock, 0, memory_order_release);
}

static inline void seq_begin(struct mc_shard *s)
{
    __atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

static inline void seq_end(struct mc_shard *s)
{
    __atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELEASE);
}

/* Doubles (or first creates) a shard's table. Caller holds the lock.
 * Returns 0, or -1 when the budget or the kernel refuses. */
static int shard_grow(struct mc_shard *s)
{
    uint64_t ncap = s->cap ? s->cap * 2 : MC_SHARD_MIN;
    size_t nbytes = ncap * sizeof(struct mc_ptr_entry);
    if (!budget_bytes) {
        budget_bytes = (size_t)mc_env_u64("MEMCREEP_PTR_TABLE_MB", 4096) << 20;
    }
    if (atomic_fetch_add(&table_bytes, nbytes) + nbytes > budget_bytes) {
        atomic_fetch_sub(&table_bytes, nbytes);
        return -1;
    }
    struct mc_ptr_entry *ne = mc_sys_alloc(nbytes);
    if (!ne) {
        atomic_fetch_sub(&table_bytes, nbytes);
        return -1;
    }
    /* Stated in the header: memcreep's own memory in the process' RSS. */
    if (mc_shm) __atomic_store_n(&mc_shm->own_bytes, atomic_load(&table_bytes), __ATOMIC_RELAXED);
    uint64_t mask = ncap - 1;
    for (uint64_t i = 0; i < s->cap; i++) {
        if (!s->e[i].ptr) continue;
        uint64_t j = ptr_hash(s->e[i].ptr) & mask;
        while (ne[j].ptr)
            j = (j + 1) & mask;
        ne[j] = s->e[i];
    }
    /* The old table stays mapped: a lock-free reader may still be in it. */
    uint32_t r = s->e ? __atomic_fetch_add(&nretired, 1, __ATOMIC_RELAXED) : MC_RETIRED;
    if (r < MC_RETIRED) {
        retired[r].p = s->e;
        retired[r].bytes = s->cap * sizeof(struct mc_ptr_entry);
    }
    __atomic_store_n(&s->e, ne, __ATOMIC_RELEASE);
    __atomic_store_n(&s->cap, ncap, __ATOMIC_RELEASE);
    return 0;
}

/* The shard of an address. glibc gives each thread its own arena, and a
 * non-main arena is a 64 MiB-aligned heap: the address bits above 26 tell
 * the arena. They choose one of 16 groups of 16 shards, the low bits the
 * shard within the group. So threads that allocate and free in their own
 * arenas mostly touch shards (and locks) no other thread touches, and the
 * cache lines stay on their core; any thread can still find any block,
 * since the shard depends on the address alone. */
static inline struct mc_shard *shard_of(uintptr_t p, uint64_t h)
{
    uint64_t region = ptr_hash(p >> 26);
    return &shards[((region >> 60) << 4) | (h >> 60)];
}

/* Inserts or replaces ptr's entry (a stale entry for the same address can
 * exist when the block was freed by a path the hooks did not see). */
int mc_ptr_insert(uintptr_t ptr, size_t size, uint32_t slot)
{
    uint64_t h = ptr_hash(ptr);
    struct mc_shard *s = shard_of(ptr, h);
    int rc = 0;
    if (size > MC_SIZE_MASK) size = MC_SIZE_MASK;
    shard_lock(s);
    seq_begin(s);
    /* Load factor at most 1/2 keeps probe sequences short. */
    if ((s->count + 1) * 2 > s->cap && shard_grow(s) != 0) {
        rc = -1;
        goto out;
    }
    uint64_t mask = s->cap - 1;
    uint64_t i = h & mask;
    while (s->e[i].ptr && s->e[i].ptr != ptr)
        i = (i + 1) & mask;
    if (!s->e[i].ptr) s->count++;
    s->e[i].ptr = ptr;
    uint64_t ep = __atomic_load_n(&epoch_now, __ATOMIC_RELAXED) & MC_EPOCH_MASK;
    s->e[i].meta = (uint64_t)size | ep << MC_SIZE_BITS | ((uint64_t)slot << MC_SLOT_SHIFT);
out:
    seq_end(s);
    shard_unlock(s);
    return rc;
}

int mc_ptr_remove(uintptr_t ptr, size_t *size, uint32_t *slot)
{
    uint64_t h = ptr_hash(ptr);
    struct mc_shard *s = shard_of(ptr, h);
    int rc = -1;
    shard_lock(s);
    seq_begin(s);
    if (!s->cap) goto out;
    uint64_t mask = s->cap - 1;
    uint64_t i = h & mask;
    while (s->e[i].ptr && s->e[i].ptr != ptr)
        i = (i + 1) & mask;
    if (!s->e[i].ptr) goto out;
    *size = (size_t)(s->e[i].meta & MC_SIZE_MASK);
    *slot = (uint32_t)(s->e[i].meta >> MC_SLOT_SHIFT);
    rc = 0;
    s->count--;
    /* Backward-shift deletion: move later entries of the same probe run
     * into the hole when their home slot does not lie cyclically in
     * (hole, j]. */
    uint64_t hole = i, j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!s->e[j].ptr) break;
        uint64_t home = ptr_hash(s->e[j].ptr) & mask;
        int stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (stays) continue;
        s->e[hole] = s->e[j];
        hole = j;
    }
    s->e[hole].ptr = 0;
    s->e[hole].meta = 0;
out:
    seq_end(s);
    shard_unlock(s);
    return rc;
}

int mc_ptr_maybe_known(uintptr_t ptr)
{
    uint64_t h = ptr_hash(ptr);
    struct mc_shard *s = shard_of(ptr, h);
    uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
    if (seq & 1) return 1;
    uint64_t cap = __atomic_load_n(&s->cap, __ATOMIC_ACQUIRE);
    const struct mc_ptr_entry *e = __atomic_load_n(&s->e, __ATOMIC_ACQUIRE);
    if (!cap) return __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) != seq;
    uint64_t mask = cap - 1, i = h & mask;
    int found = 0;
    for (uint64_t n = 0; n < cap; n++, i = (i + 1) & mask) {
        uintptr_t q = __atomic_load_n(&e[i].ptr, __ATOMIC_RELAXED);
        if (q == ptr) {
            found = 1;
            break;
        }
        if (!q) break;
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return found || __atomic_load_n(&s->seq, __ATOMIC_RELAXED) != seq;
}

void mc_ptr_lock_all(void)
{
    for (int i = 0; i < MC_SHARDS; i++)
        shard_lock(&shards[i]);
}

void mc_ptr_unlock_all(void)
{
    for (int i = MC_SHARDS - 1; i >= 0; i--)
        shard_unlock(&shards[i]);
}

/* The scan takes one shard's lock at a time, so the program's allocations
 * wait at most for one shard's entries (a few microseconds per thousand). */
int mc_ptr_highest_below(uintptr_t limit, struct mc_ptr_block *out, int max)
{
    int n = 0;
    for (int k = 0; k < MC_SHARDS; k++) {
        struct mc_shard *s = &shards[k];
        shard_lock(s);
        for (uint64_t i = 0; i < s->cap; i++) {
            uintptr_t p = s->e[i].ptr;
            if (!p || p >= limit) continue;
            if (n == max && p <= out[n - 1].ptr) continue;
            /* Insertion into out, kept highest first. */
            int j = n < max ? n++ : max - 1;
            while (j > 0 && out[j - 1].ptr < p) {
                out[j] = out[j - 1];
                j--;
            }
            out[j].ptr = p;
            out[j].size = s->e[i].meta & MC_SIZE_MASK & MC_TAG_FREE;
            out[j].slot = (uint32_t)(s->e[i].meta >> MC_SLOT_SHIFT);
        }
        shard_unlock(s);
    }
    return n;
}

void mc_ptr_set_epoch(uint32_t epoch)
{
    __atomic_store_n(&epoch_now, epoch < MC_AGE_EPOCHS ? epoch : MC_AGE_EPOCHS - 1,
                     __ATOMIC_RELAXED);
}

/* Same walk as mc_ptr_highest_below: one shard's lock at a time. A block
 * freed or made during the walk is counted or not depending on whether its
 * shard was already walked: the census is a moment per shard, not one
 * moment for the whole table, which is what per-epoch totals can bear. */
void mc_ptr_census(void (*add)(uintptr_t ptr, uint32_t slot, uint64_t tagged, uint32_t epoch,
                               void *arg),
                   void *arg)
{
    for (int k = 0; k < MC_SHARDS; k++) {
        struct mc_shard *s = &shards[k];
        shard_lock(s);
        for (uint64_t i = 0; i < s->cap; i++) {
            if (!s->e[i].ptr) continue;
            uint64_t m = s->e[i].meta;
            add(s->e[i].ptr, (uint32_t)(m >> MC_SLOT_SHIFT), m & MC_SIZE_MASK,
                (uint32_t)(m >> MC_SIZE_BITS & MC_EPOCH_MASK), arg);
        }
        shard_unlock(s);
    }
}

/* Anonymous memory mapped over [p, p + bytes): reads find zeroes (an empty
 * table) and the pages the old contents held go back to the kernel. */
static void wipe(void *p, size_t bytes)
{
    if (p && bytes)
        mmap(p, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}

void mc_ptr_reset(void)
{
    for (int i = 0; i < MC_SHARDS; i++) {
        struct mc_shard *s = &shards[i];
        shard_lock(s);
        seq_begin(s);
        wipe(s->e, s->cap * sizeof(struct mc_ptr_entry));
        s->count = 0;
        seq_end(s);
        shard_unlock(s);
    }
    uint32_t n = __atomic_load_n(&nretired, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n && i < MC_RETIRED; i++)
        wipe(retired[i].p, retired[i].bytes);
    epoch_now = 0;
}
