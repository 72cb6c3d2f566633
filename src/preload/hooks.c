/* hooks.c - the allocation functions libmemcreep.so puts in front of the
 * C library's: malloc, calloc, realloc, reallocarray, free, posix_memalign,
 * aligned_alloc, memalign, valloc, pvalloc. C++ operator new and delete,
 * strdup and the rest arrive through these.
 *
 * Each hook calls the real function first (found with dlsym(RTLD_NEXT), so
 * a different allocator linked into the target keeps working), then records
 * the event unless this thread is already inside the library (a
 * thread-local guard: libunwind or dl_iterate_phdr may allocate) or
 * recording is off. While dlsym itself runs, the calloc it asks for is
 * served from a static buffer that is never freed. errno is kept as the
 * real function left it. */
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define EXPORT   __attribute__((visibility("default")))
#define TLS_FAST __attribute__((tls_model("initial-exec")))

static struct {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
} real;

static __thread int in_hook TLS_FAST;
static __thread unsigned events TLS_FAST;
static int depth = MC_DEFAULT_DEPTH;

/* ---- byte sampling ----
 *
 * With MEMCREEP_SAMPLE_BYTES=R, allocations are sampled as points of a
 * Poisson process over allocated bytes with mean spacing R (as jemalloc's
 * and tcmalloc's heap profilers do): each thread counts down an
 * exponentially distributed number of bytes, and the allocation that
 * crosses zero is recorded. A block of n bytes is then recorded with
 * probability p(n) = 1 - exp(-n/R), so counting it as n/p(n) bytes and
 * 1/p(n) blocks gives unbiased totals (Poisson thinning). Small blocks are
 * rarely seen, each standing for many; a block much larger than R is
 * always seen and counts once. Counts are kept in units of 1/1024 block
 * (MC_COUNT_SCALE) so that fractional weights add up right. Unsampled
 * allocations cost one subtraction; unsampled frees a lock-free look in
 * the pointer table. */
static uint64_t sample_bytes;
static double sample_mean;
static __thread uint64_t tl_left TLS_FAST;
static __thread uint64_t tl_rng TLS_FAST;

/* Exponential variate with mean sample_mean, by inversion. */
static uint64_t next_interval(void)
{
    if (!tl_rng) tl_rng = mc_now_ns(CLOCK_MONOTONIC) ^ (uint64_t)(uintptr_t)&tl_rng;
    /* xorshift64* (Vigna 2016); 53 random bits make u in (0, 1]. */
    tl_rng ^= tl_rng >> 12;
    tl_rng ^= tl_rng << 25;
    tl_rng ^= tl_rng >> 27;
    double u = (double)((tl_rng * 0x2545f4914f6cdd1dull) >> 11) + 1.0;
    u /= 9007199254740992.0;
    double v = -log(u) * sample_mean;
    return v < 1 ? 1 : (uint64_t)v;
}

/* Weight of a sampled block of n bytes: 1/p(n), p(n) = 1 - exp(-n/R). */
static void weights(size_t n, size_t *bytes, int64_t *count)
{
    if (!sample_bytes) {
        *bytes = n;
        *count = MC_COUNT_SCALE;
        return;
    }
    double p = -expm1(-(double)n / sample_mean);
    double w = p > 0 ? 1 / p : 1;
    *bytes = (size_t)llround((double)n * w);
    *count = llround(w * MC_COUNT_SCALE);
}

/* ---- bootstrap buffer for dlsym's own allocations ---- */

#define BOOT_SIZE (64 * 1024)
static _Alignas(64) char boot_buf[BOOT_SIZE];
static size_t boot_used;
static int resolving;

static void *boot_alloc(size_t size)
{
    size_t need = (size + 16 + 15) & ~(size_t)15;
    size_t off = __atomic_fetch_add(&boot_used, need, __ATOMIC_RELAXED);
    if (off + need > BOOT_SIZE) return NULL;
    *(size_t *)(boot_buf + off) = size;
    return boot_buf + off + 16; /* static storage: already zero */
}

static inline int is_boot(const void *p)
{
    return (const char *)p >= boot_buf && (const char *)p < boot_buf + BOOT_SIZE;
}

/* Looks the real functions up once. Returns 1 when malloc is usable. */
static int resolve(void)
{
    if (__atomic_exchange_n(&resolving, 1, __ATOMIC_ACQUIRE)) return real.malloc != NULL;
    real.calloc = dlsym(RTLD_NEXT, "calloc");
    real.free = dlsym(RTLD_NEXT, "free");
    real.realloc = dlsym(RTLD_NEXT, "realloc");
    real.posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real.aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    real.memalign = dlsym(RTLD_NEXT, "memalign");
    real.valloc = dlsym(RTLD_NEXT, "valloc");
    real.pvalloc = dlsym(RTLD_NEXT, "pvalloc");
    void *m = dlsym(RTLD_NEXT, "malloc");
    __atomic_store_n(&real.malloc, m, __ATOMIC_RELEASE);
    return m != NULL;
}

#define ENSURE_REAL()                                                                              \
    do {                                                                                           \
        if (MC_UNLIKELY(!__atomic_load_n(&real.malloc, __ATOMIC_ACQUIRE)) && !resolve())           \
            return boot_alloc_for_call();                                                          \
    } while (0)

/* ---- recording ---- */

/* Records a new block. Inline in every hook so that the stack walk starts
 * one frame above the caller's code. */
static inline __attribute__((always_inline)) void record_alloc(void *p, size_t size)
{
    if (MC_UNLIKELY(!p) || !mc_active || in_hook) return;
    if (sample_bytes) {
        if (MC_UNLIKELY(!tl_left)) tl_left = next_interval();
        if (MC_LIKELY(size < tl_left)) {
            tl_left -= size;
            return;
        }
        tl_left = next_interval();
    }
    int saved = errno;
    in_hook = 1;
    if (mc_publish_own() == 0) {
        uint64_t ips[MC_MAX_DEPTH];
        int d = mc_capture(ips, depth);
        uint32_t slot = mc_stack_intern(ips, d);
        size_t wb;
        int64_t wc;
        weights(size, &wb, &wc);
        if (mc_ptr_insert((uintptr_t)p, size, slot) == 0)
            mc_stack_alloc(slot, wb, wc);
        else
            __atomic_fetch_add(&mc_shm->lost_ptrs, 1, __ATOMIC_RELAXED);
        if (MC_UNLIKELY((++events & 255) == 0)) {
            mc_publish_trim();
            if ((events & 4095) == 0) mc_publish_mallinfo();
        }
    }
    in_hook = 0;
    errno = saved;
}

/* Forgets a block that is about to be freed. Must run before the real free:
 * once freed, the address can be handed to another thread and recorded
 * again. Returns 1 when the block was known (its size and stack in *size
 * and *slot) and its bytes must be taken off with finish_free. */
static inline int forget(void *p, size_t *size, uint32_t *slot)
{
    if (!p || !mc_active || in_hook) return 0;
    if (sample_bytes && !mc_ptr_maybe_known((uintptr_t)p)) return 0;
    int saved = errno, known = 0;
    in_hook = 1;
    if (mc_publish_own() == 0) known = mc_ptr_remove((uintptr_t)p, size, slot) == 0;
    in_hook = 0;
    errno = saved;
    return known;
}

static inline void finish_free(size_t size, uint32_t slot)
{
    size_t wb;
    int64_t wc;
    weights(size, &wb, &wc);
    mc_stack_free(slot, wb, wc);
    if (MC_UNLIKELY((++events & 255) == 0)) {
        int saved = errno;
        in_hook = 1;
        mc_publish_trim();
        if ((events & 4095) == 0) mc_publish_mallinfo();
        in_hook = 0;
        errno = saved;
    }
}

/* ---- the hooks ---- */

#define boot_alloc_for_call() boot_alloc(size)

EXPORT void *malloc(size_t size)
{
    ENSURE_REAL();
    void *p = real.malloc(size);
    record_alloc(p, size);
    return p;
}

EXPORT void free(void *p)
{
    size_t size;
    uint32_t slot;
    if (!p || is_boot(p)) return;
    int known = forget(p, &size, &slot);
    real.free(p);
    if (known) finish_free(size, slot);
}

EXPORT void *calloc(size_t n, size_t size)
{
    if (MC_UNLIKELY(!__atomic_load_n(&real.calloc, __ATOMIC_ACQUIRE))) {
        /* dlsym is running and asks for calloc: serve it statically. */
        if (__atomic_load_n(&resolving, __ATOMIC_ACQUIRE) || !resolve() || !real.calloc)
            return n && size > SIZE_MAX / n ? NULL : boot_alloc(n * size);
    }
    void *p = real.calloc(n, size);
    record_alloc(p, n * size);
    return p;
}

EXPORT void *realloc(void *old, size_t size)
{
    ENSURE_REAL();
    if (old && is_boot(old)) {
        /* Move a bootstrap block to the real heap; it stays in the buffer. */
        size_t have = *(size_t *)((char *)old - 16);
        void *p = malloc(size);
        if (p) memcpy(p, old, have < size ? have : size);
        return p;
    }
    size_t osize = 0;
    uint32_t oslot = 0;
    int known = forget(old, &osize, &oslot);
    void *p = real.realloc(old, size);
    if (!p && size != 0) {
        /* Failed: the old block is still live and still the caller's. */
        if (known && !in_hook) {
            int saved = errno;
            in_hook = 1;
            if (mc_ptr_insert((uintptr_t)old, osize, oslot) != 0) finish_free(osize, oslot);
            in_hook = 0;
            errno = saved;
        }
        return NULL;
    }
    /* The new block is counted before the old one is taken off: a reader
     * between the two then sees a brief excess, never a dip that a growing
     * buffer does not have (a dip would break its floor series). */
    record_alloc(p, size);
    if (known) finish_free(osize, oslot);
    return p;
}

EXPORT void *reallocarray(void *old, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(old, total);
}

EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
    if (MC_UNLIKELY(!__atomic_load_n(&real.malloc, __ATOMIC_ACQUIRE)) && !resolve()) return ENOMEM;
    int rc = real.posix_memalign(out, align, size);
    if (rc == 0) record_alloc(*out, size);
    return rc;
}

EXPORT void *aligned_alloc(size_t align, size_t size)
{
    ENSURE_REAL();
    void *p = real.aligned_alloc(align, size);
    record_alloc(p, size);
    return p;
}

EXPORT void *memalign(size_t align, size_t size)
{
    ENSURE_REAL();
    void *p = real.memalign(align, size);
    record_alloc(p, size);
    return p;
}

EXPORT void *valloc(size_t size)
{
    ENSURE_REAL();
    void *p = real.valloc(size);
    record_alloc(p, size);
    return p;
}

EXPORT void *pvalloc(size_t size)
{
    ENSURE_REAL();
    void *p = real.pvalloc(size);
    record_alloc(p, size);
    return p;
}

/* The reentrancy guard, for the other hooks of the library. */
int mc_in_hook(void)
{
    return in_hook;
}

void mc_set_in_hook(int v)
{
    in_hook = v;
}

/* ---- start and end ---- */

void mc_publish_start(void);
void mc_publish_stop(void);

__attribute__((constructor(101))) static void mc_init(void)
{
    if (!__atomic_load_n(&real.malloc, __ATOMIC_ACQUIRE)) resolve();
    in_hook = 1; /* nothing the set-up allocates is the target's */
    sample_bytes = mc_env_u64("MEMCREEP_SAMPLE_BYTES", 0);
    sample_mean = (double)sample_bytes;
    depth = (int)mc_env_u64("MEMCREEP_DEPTH", MC_DEFAULT_DEPTH);
    if (depth < 1) depth = 1;
    if (depth > MC_MAX_DEPTH) depth = MC_MAX_DEPTH;
    const char *dir = getenv("MEMCREEP_DIR");
    if (dir && *dir) mc_fd_scan();
    mc_capture_init();
    mc_publish_start();
    in_hook = 0;
}

__attribute__((destructor)) static void mc_fini(void)
{
    in_hook = 1;
    mc_publish_stop();
    in_hook = 0;
}
