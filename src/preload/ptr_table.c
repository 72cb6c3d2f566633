/* ptr_table.c - the live-pointer table: which stack allocated each live
 * block, and how big it is, so that free() can take the bytes back from the
 * right stack.
 *
 * Private memory (not shared): the reader never needs it, only the counters
 * it feeds. Sharded by address into MC_SHARDS open-addressing tables, each
 * with its own spinlock, so threads rarely meet: there is no global lock on
 * the allocation path. Deletion is by backward shift (Knuth 6.4, algorithm
 * R), so no tombstones accumulate in a long run. Tables grow from mmap'd
 * memory within a total budget (MEMCREEP_PTR_TABLE_MB); past it new blocks
 * go untracked and are counted in the header's lost_ptrs.
 *
 * What it costs per live block. An entry is 12 bytes: the address (16-byte
 * aligned, below 2^48: 44 bits), the size (22 bits), the domain tags (2),
 * the epoch (4) and the stack slot (24). A table holds between 1/2 and 3/4
 * of its capacity (it grows by half when 3/4 full; the slot of an address
 * is fastrange(hash, capacity), Lemire 2019, so a capacity need not be a
 * power of two), hence 16 to 24 bytes per live tracked block. Linear
 * probing at load a takes (1 + 1/(1-a)^2)/2 probes to miss, 8.5 at 3/4
 * (Knuth 6.4): 102 bytes, two cache lines. Fixed: the first tables of the
 * 256 shards, a page each (1 MiB once every shard was used). Blocks of 4
 * MiB and more keep their size in a small list of their own (big[]); an
 * address the encoding cannot hold is not tracked (glibc returns neither).
 *
 * When allocations are sampled, most freed blocks were never recorded, and
 * taking a lock only to find nothing would cost more than the sampling
 * saves. So each shard also carries a sequence count (odd while a writer
 * changes it) and mc_ptr_maybe_known() looks without the lock, trusting
 * what it saw only if the count did not move. A table replaced by a larger
 * one is never unmapped, so such a reader can never touch freed memory, but
 * its pages go back to the kernel (MADV_DONTNEED): a late reader finds
 * zeroes there, sees the count moved, and answers "maybe". */
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define MC_SHARDS 256
/* Small first tables: 256 shards of 64 entries are 192 KiB of cache lines,
 * which stay in the L2 cache beside the program's data; at 512 entries of
 * 16 bytes they were 2 MiB, and every insert and remove missed it. (Each
 * table is a mapping of its own, so the pages they take are 1 MiB: that is
 * what own_bytes counts.) */
#define MC_SHARD_MIN 64

/* An entry, three 32-bit words (4-byte aligned at any index, so each word
 * can be read atomically by the lock-free reader):
 *   w[0], w[1] low 12 bits: address >> 4 (44 bits; 0 = empty)
 *   w[1] high 20 bits, w[2] bits 0-1: size (22 bits; BIG_SIZE: in big[])
 *   w[2] bits 2-3: MC_TAG_BURST, MC_TAG_OBJ; bits 4-7: epoch; 8-31: slot */
struct mc_ptr_entry {
    uint32_t w[3];
};
#define KEY_BITS    44
#define KEY_MASK    ((1ull << KEY_BITS) - 1)
#define SIZE_BITS   22
#define BIG_SIZE    ((1ull << SIZE_BITS) - 1)
#define SLOT_SHIFT  8
#define MC_TAGS     (MC_TAG_BURST | MC_TAG_OBJ)
#define MC_TAG_FREE (MC_TAG_BURST - 1)

/* A block's fields, unpacked. */
struct fields {
    uint64_t key;    /* address >> 4 */
    uint64_t tagged; /* size as hooks.c tags it (size | MC_TAG_*) */
    uint32_t epoch, slot;
};

static inline uint64_t entry_key(const struct mc_ptr_entry *e)
{
    return ((uint64_t)e->w[0] | (uint64_t)e->w[1] << 32) & KEY_MASK;
}

/* The same, read word by word without the lock (the seqlock decides). */
static inline uint64_t entry_key_racy(const struct mc_ptr_entry *e)
{
    uint64_t lo = __atomic_load_n(&e->w[0], __ATOMIC_RELAXED);
    uint64_t hi = __atomic_load_n(&e->w[1], __ATOMIC_RELAXED);
    return (lo | hi << 32) & KEY_MASK;
}

/* The size field of an entry (BIG_SIZE: look in big[]). */
static inline uint64_t entry_size(const struct mc_ptr_entry *e)
{
    return (uint64_t)(e->w[1] >> 12) | (uint64_t)(e->w[2] & 3) << 20;
}

static inline struct fields entry_fields(const struct mc_ptr_entry *e)
{
    uint32_t w2 = e->w[2];
    struct fields f = {entry_key(e), entry_size(e), (w2 >> 4) & 0xf, w2 >> SLOT_SHIFT};
    if (w2 & 4) f.tagged |= MC_TAG_BURST;
    if (w2 & 8) f.tagged |= MC_TAG_OBJ;
    return f;
}

/* Packs key, the size field (<= BIG_SIZE), tags, epoch and slot. */
static inline void entry_set(struct mc_ptr_entry *e, uint64_t key, uint64_t size, uint64_t tags,
                             uint32_t epoch, uint32_t slot)
{
    e->w[0] = (uint32_t)key;
    e->w[1] = (uint32_t)(key >> 32) | (uint32_t)(size & 0xfffff) << 12;
    e->w[2] = (uint32_t)(size >> 20) | (tags & MC_TAG_BURST ? 4u : 0) |
              (tags & MC_TAG_OBJ ? 8u : 0) | (epoch & 0xf) << 4 | slot << SLOT_SHIFT;
}

/* Blocks of BIG_SIZE bytes and more: their sizes, in a list under its own
 * lock. Only their allocation and free look here (each an mmap or munmap
 * already); past MC_BIG_MAX live ones (4 GiB at least) new ones go
 * untracked. Lock order: a shard's, then big_lock. */
#define MC_BIG_MAX 4096
static struct {
    uintptr_t ptr;
    uint64_t tagged;
} big[MC_BIG_MAX];
static atomic_uint big_lock;
static uint32_t big_used; /* entries [0, big_used) were ever used */

/* The epoch of new blocks: the rest thread sets it (mc_ptr_set_epoch) when
 * memcreep starts one; a private copy, so the allocation path reads no
 * line of the shared header that other threads write. */
static uint32_t epoch_now;

struct mc_shard {
    atomic_uint lock;
    uint32_t count;
    uint64_t cap; /* 0 until first use */
    struct mc_ptr_entry *e;
    uint32_t seq; /* odd while the owner of the lock changes the table */
    char pad[64 - 28];
};

static struct mc_shard shards[MC_SHARDS];
/* Tables replaced by larger ones, for mc_ptr_reset to give back. */
#define MC_RETIRED (MC_SHARDS * 64)
static struct {
    void *p;
    size_t bytes;
} retired[MC_RETIRED];
static uint32_t nretired;
static atomic_size_t table_bytes;
static size_t budget_bytes;

/* MurmurHash3's 64-bit finalizer: every input bit reaches every output bit,
 * so page-aligned blocks (low bits all zero) still spread over the whole
 * table; the top byte picks the shard, the low half the slot. */
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

/* The home slot of hash h in a table of cap entries: fastrange (Lemire,
 * "Fast random integer generation in an interval", 2019), uniform when the
 * low 32 bits of h are. */
static inline uint64_t home_of(uint64_t h, uint64_t cap)
{
    return ((h & 0xffffffffull) * cap) >> 32;
}

static inline uint64_t next_of(uint64_t i, uint64_t cap)
{
    return i + 1 == cap ? 0 : i + 1;
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

/* The memory a table of n bytes takes: whole pages, each its own mapping. */
static inline size_t page_bytes(size_t n)
{
    return (n + 4095) & ~(size_t)4095;
}

/* Whether a table of cap entries is small enough to be kept sparse: at
 * most half full, doubling, until it reaches MC_SHARD_SPARSE entries (12
 * KiB). A delete shifts back the rest of its probe run, hashing each entry
 * again, and that run is 1/(1-a)^2 long at load a: held between 1/4 and
 * 1/2 instead of 1/2 and 3/4, the table's share of bench's allocation
 * workload (a few hundred live blocks per shard) falls from 16% of the
 * cycles to 11% (perf, docs/benchmarks.md). Past it a table holds 1/2 to 3/4 (16 to 24 bytes per
 * live block); the sparse part is bounded: 12 KiB per shard, 3 MiB in all. */
#define MC_SHARD_SPARSE 1024
static inline int shard_sparse(uint64_t cap)
{
    return cap < MC_SHARD_SPARSE;
}

/* Whether a shard must grow before one more entry goes in. */
static inline int shard_full(const struct mc_shard *s)
{
    return shard_sparse(s->cap) ? (s->count + 1) * 2 > s->cap : (s->count + 1) * 4 > s->cap * 3;
}

/* Grows a shard's table (or first creates it): doubled while sparse, by
 * half past it. Caller holds the lock. Returns 0, or -1 when the budget or
 * the kernel refuses. */
static int shard_grow(struct mc_shard *s)
{
    uint64_t ncap = !s->cap                ? MC_SHARD_MIN
                    : shard_sparse(s->cap) ? 2 * s->cap
                                           : s->cap + s->cap / 2;
    size_t nbytes = ncap * sizeof(struct mc_ptr_entry), pages = page_bytes(nbytes);
    if (!budget_bytes) {
        budget_bytes = (size_t)mc_env_u64("MEMCREEP_PTR_TABLE_MB", 4096) << 20;
    }
    if (atomic_fetch_add(&table_bytes, pages) + pages > budget_bytes) {
        atomic_fetch_sub(&table_bytes, pages);
        return -1;
    }
    struct mc_ptr_entry *ne = mc_sys_alloc(nbytes);
    if (!ne) {
        atomic_fetch_sub(&table_bytes, pages);
        return -1;
    }
    for (uint64_t i = 0; i < s->cap; i++) {
        uint64_t key = entry_key(&s->e[i]);
        if (!key) continue;
        uint64_t j = home_of(ptr_hash((uintptr_t)(key << 4)), ncap);
        while (entry_key(&ne[j]))
            j = next_of(j, ncap);
        ne[j] = s->e[i];
    }
    /* The old table stays mapped: a lock-free reader may still be in it. */
    struct mc_ptr_entry *old = s->e;
    size_t old_bytes = s->cap * sizeof(struct mc_ptr_entry);
    uint32_t r = old ? __atomic_fetch_add(&nretired, 1, __ATOMIC_RELAXED) : MC_RETIRED;
    if (r < MC_RETIRED) {
        retired[r].p = old;
        retired[r].bytes = old_bytes;
    }
    __atomic_store_n(&s->e, ne, __ATOMIC_RELEASE);
    __atomic_store_n(&s->cap, ncap, __ATOMIC_RELEASE);
    if (old && madvise(old, old_bytes, MADV_DONTNEED) == 0)
        atomic_fetch_sub(&table_bytes, page_bytes(old_bytes));
    /* Stated in the header: memcreep's own memory in the process' RSS. */
    if (mc_shm) __atomic_store_n(&mc_shm->own_bytes, atomic_load(&table_bytes), __ATOMIC_RELAXED);
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

static inline void big_lock_take(void)
{
    while (atomic_exchange_explicit(&big_lock, 1, memory_order_acquire))
        sched_yield();
}

static inline void big_lock_drop(void)
{
    atomic_store_explicit(&big_lock, 0, memory_order_release);
}

/* Records ptr's big size (replacing a stale record of it). Returns 0, or
 * -1 when the list is full. */
static int big_put(uintptr_t ptr, uint64_t tagged)
{
    int rc = -1;
    big_lock_take();
    uint32_t free_at = MC_BIG_MAX;
    for (uint32_t i = 0; i < big_used; i++) {
        if (big[i].ptr == ptr) {
            free_at = i;
            break;
        }
        if (!big[i].ptr && free_at == MC_BIG_MAX) free_at = i;
    }
    if (free_at == MC_BIG_MAX && big_used < MC_BIG_MAX) free_at = big_used++;
    if (free_at < MC_BIG_MAX) {
        big[free_at].ptr = ptr;
        big[free_at].tagged = tagged;
        rc = 0;
    }
    big_lock_drop();
    return rc;
}

/* The big size recorded for ptr (0 if none); take: forget it too. */
static uint64_t big_get(uintptr_t ptr, int take)
{
    uint64_t tagged = 0;
    big_lock_take();
    for (uint32_t i = 0; i < big_used; i++) {
        if (big[i].ptr != ptr) continue;
        tagged = big[i].tagged;
        if (take) big[i].ptr = 0;
        break;
    }
    big_lock_drop();
    return tagged;
}

/* An entry's size as hooks.c tagged it, from big[] when it is big. */
static inline uint64_t tagged_of(const struct mc_ptr_entry *e, uintptr_t ptr, int take)
{
    struct fields f = entry_fields(e);
    if ((f.tagged & ~MC_TAGS) != BIG_SIZE) return f.tagged;
    return big_get(ptr, take);
}

/* Inserts or replaces ptr's entry (a stale entry for the same address can
 * exist when the block was freed by a path the hooks did not see). */
int mc_ptr_insert(uintptr_t ptr, size_t size, uint32_t slot)
{
    if ((ptr & 15) || (ptr >> (KEY_BITS + 4)) || !ptr) return -1;
    uint64_t key = (uint64_t)ptr >> 4, h = ptr_hash(ptr);
    uint64_t bytes = (uint64_t)size & MC_TAG_FREE, tags = (uint64_t)size & MC_TAGS;
    uint64_t field = bytes;
    if (bytes >= BIG_SIZE) {
        if (big_put(ptr, size) != 0) return -1;
        field = BIG_SIZE;
    }
    struct mc_shard *s = shard_of(ptr, h);
    int rc = 0, was_big = 0;
    shard_lock(s);
    seq_begin(s);
    /* Load factor at most 3/4 keeps misses within two cache lines. */
    if (shard_full(s) && shard_grow(s) != 0) {
        rc = -1;
        goto out;
    }
    uint64_t i = home_of(h, s->cap), k;
    while ((k = entry_key(&s->e[i])) && k != key)
        i = next_of(i, s->cap);
    if (!k)
        s->count++;
    else
        was_big = entry_size(&s->e[i]) == BIG_SIZE;
    uint32_t ep = __atomic_load_n(&epoch_now, __ATOMIC_RELAXED) & 0xf;
    entry_set(&s->e[i], key, field, tags, ep, slot);
out:
    seq_end(s);
    shard_unlock(s);
    /* A stale big record of this address, or the one just made for a block
     * that could not be entered, goes. */
    if ((was_big && field != BIG_SIZE) || (rc != 0 && field == BIG_SIZE)) big_get(ptr, 1);
    return rc;
}

int mc_ptr_remove(uintptr_t ptr, size_t *size, uint32_t *slot)
{
    if ((ptr & 15) || (ptr >> (KEY_BITS + 4)) || !ptr) return -1;
    uint64_t key = (uint64_t)ptr >> 4, h = ptr_hash(ptr);
    struct mc_shard *s = shard_of(ptr, h);
    int rc = -1, is_big = 0;
    shard_lock(s);
    seq_begin(s);
    if (!s->cap) goto out;
    uint64_t cap = s->cap, i = home_of(h, cap), k;
    while ((k = entry_key(&s->e[i])) && k != key)
        i = next_of(i, cap);
    if (!k) goto out;
    struct fields f = entry_fields(&s->e[i]);
    is_big = (f.tagged & ~MC_TAGS) == BIG_SIZE;
    *size = (size_t)f.tagged;
    *slot = f.slot;
    rc = 0;
    s->count--;
    /* Backward-shift deletion: move later entries of the same probe run
     * into the hole when their home slot does not lie cyclically in
     * (hole, j]. */
    uint64_t hole = i, j = i;
    for (;;) {
        j = next_of(j, cap);
        uint64_t kj = entry_key(&s->e[j]);
        if (!kj) break;
        uint64_t home = home_of(ptr_hash((uintptr_t)(kj << 4)), cap);
        int stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (stays) continue;
        s->e[hole] = s->e[j];
        hole = j;
    }
    memset(&s->e[hole], 0, sizeof(s->e[hole]));
out:
    seq_end(s);
    shard_unlock(s);
    if (is_big) *size = (size_t)big_get(ptr, 1);
    return rc;
}

int mc_ptr_maybe_known(uintptr_t ptr)
{
    if ((ptr & 15) || (ptr >> (KEY_BITS + 4)) || !ptr) return 0;
    uint64_t key = (uint64_t)ptr >> 4, h = ptr_hash(ptr);
    struct mc_shard *s = shard_of(ptr, h);
    uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
    if (seq & 1) return 1;
    uint64_t cap = __atomic_load_n(&s->cap, __ATOMIC_ACQUIRE);
    const struct mc_ptr_entry *e = __atomic_load_n(&s->e, __ATOMIC_ACQUIRE);
    if (!cap) return __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) != seq;
    uint64_t i = home_of(h, cap);
    int found = 0;
    for (uint64_t n = 0; n < cap; n++, i = next_of(i, cap)) {
        uint64_t q = entry_key_racy(&e[i]);
        if (q == key) {
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
    big_lock_take();
}

void mc_ptr_unlock_all(void)
{
    big_lock_drop();
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
            uintptr_t p = (uintptr_t)(entry_key(&s->e[i]) << 4);
            if (!p || p >= limit) continue;
            if (n == max && p <= out[n - 1].ptr) continue;
            /* Insertion into out, kept highest first. */
            int j = n < max ? n++ : max - 1;
            while (j > 0 && out[j - 1].ptr < p) {
                out[j] = out[j - 1];
                j--;
            }
            out[j].ptr = p;
            out[j].size = tagged_of(&s->e[i], p, 0) & MC_TAG_FREE;
            out[j].slot = entry_fields(&s->e[i]).slot;
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
            uint64_t key = entry_key(&s->e[i]);
            if (!key) continue;
            struct fields f = entry_fields(&s->e[i]);
            uintptr_t p = (uintptr_t)(key << 4);
            add(p, f.slot, tagged_of(&s->e[i], p, 0), f.epoch, arg);
        }
        shard_unlock(s);
    }
}

size_t mc_ptr_bytes(void)
{
    return atomic_load(&table_bytes);
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
    big_lock_take();
    memset(big, 0, sizeof(big));
    big_used = 0;
    big_lock_drop();
    epoch_now = 0;
}
