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
 * new blocks go untracked and are counted in the header's lost_ptrs. */
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "internal.h"

#define MC_SHARDS    256
#define MC_SHARD_MIN 512
#define MC_SIZE_BITS 40
#define MC_SIZE_MASK ((1ull << MC_SIZE_BITS) - 1)

struct mc_ptr_entry {
    uintptr_t ptr; /* 0 = empty */
    uint64_t meta; /* size (low 40 bits) | stack slot << 40 */
};

struct mc_shard {
    atomic_uint lock;
    uint32_t count;
    uint64_t cap; /* power of two, 0 until first use */
    struct mc_ptr_entry *e;
    char pad[64 - 24];
};

static struct mc_shard shards[MC_SHARDS];
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
    uint64_t mask = ncap - 1;
    for (uint64_t i = 0; i < s->cap; i++) {
        if (!s->e[i].ptr) continue;
        uint64_t j = ptr_hash(s->e[i].ptr) & mask;
        while (ne[j].ptr)
            j = (j + 1) & mask;
        ne[j] = s->e[i];
    }
    if (s->e) {
        mc_sys_free(s->e, s->cap * sizeof(struct mc_ptr_entry));
        atomic_fetch_sub(&table_bytes, s->cap * sizeof(struct mc_ptr_entry));
    }
    s->e = ne;
    s->cap = ncap;
    return 0;
}

static inline struct mc_shard *shard_of(uint64_t h)
{
    return &shards[h >> 56];
}

/* Inserts or replaces ptr's entry (a stale entry for the same address can
 * exist when the block was freed by a path the hooks did not see). */
int mc_ptr_insert(uintptr_t ptr, size_t size, uint32_t slot)
{
    uint64_t h = ptr_hash(ptr);
    struct mc_shard *s = shard_of(h);
    int rc = 0;
    if (size > MC_SIZE_MASK) size = MC_SIZE_MASK;
    shard_lock(s);
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
    s->e[i].meta = (uint64_t)size | ((uint64_t)slot << MC_SIZE_BITS);
out:
    shard_unlock(s);
    return rc;
}

int mc_ptr_remove(uintptr_t ptr, size_t *size, uint32_t *slot)
{
    uint64_t h = ptr_hash(ptr);
    struct mc_shard *s = shard_of(h);
    int rc = -1;
    shard_lock(s);
    if (!s->cap) goto out;
    uint64_t mask = s->cap - 1;
    uint64_t i = h & mask;
    while (s->e[i].ptr && s->e[i].ptr != ptr)
        i = (i + 1) & mask;
    if (!s->e[i].ptr) goto out;
    *size = (size_t)(s->e[i].meta & MC_SIZE_MASK);
    *slot = (uint32_t)(s->e[i].meta >> MC_SIZE_BITS);
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
    shard_unlock(s);
    return rc;
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
