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
#include <link.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define EXPORT __attribute__((visibility("default")))

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

/* CPython's object allocator (python_alloc.c) is sampled the same way,
 * always, with its own mean (MEMCREEP_PY_SAMPLE_BYTES) and countdown: it
 * serves every object of 512 bytes or less, millions a second, and taking
 * a stack at each would cost the program several times its own time.
 * Blocks it passes on to malloc are counted there, exactly (tl_raw tells
 * the wrapper so). A recorded block of the object domain carries MC_OBJ in
 * its size in the pointer table, so its free takes off the same weights. */
static double obj_mean = 8192;
static __thread uint64_t tl_obj_left TLS_FAST;
static __thread int tl_raw TLS_FAST;
#define MC_OBJ      MC_TAG_OBJ
#define MC_BURST    MC_TAG_BURST
#define MC_SIZE_MAX (MC_BURST - 1)

/* ---- bursts ----
 *
 * Taking a stack costs a microsecond or two; a thread that allocates
 * millions of blocks a second (OpenSSL parsing a CA bundle into a new SSL
 * context: 200 000 allocations) would run several times slower. So each
 * thread counts its allocation calls and every BURST_CALLS of them looks at
 * the clock: while it makes more than burst_rate a second, its malloc-side
 * blocks are sampled like the object domain (mean burst_mean, their own
 * countdown, MC_BURST in the table), and recorded one by one again when
 * the rate falls under half that. The time spent in stacks is then bounded
 * by about burst_rate stacks a second. MEMCREEP_BURST_RATE sets the rate
 * (0: never; by default on in Python processes, whose stacks are the
 * deepest, and off elsewhere). */
#define BURST_CALLS 4096
static double burst_mean = 8192;
static uint64_t burst_rate;
static int burst_explicit; /* MEMCREEP_BURST_RATE was given */
static __thread uint32_t tl_calls TLS_FAST;
static __thread int tl_burst TLS_FAST;
static __thread uint64_t tl_burst_ns TLS_FAST;
static __thread uint64_t tl_burst_left TLS_FAST;

/* Every BURST_CALLS calls: is this thread in a burst? */
static void burst_check(void)
{
    uint64_t now = mc_now_ns(CLOCK_MONOTONIC), dt = now - tl_burst_ns;
    uint64_t limit = tl_burst ? burst_rate / 2 : burst_rate;
    int was = tl_burst;
    tl_burst = tl_burst_ns && dt && (double)BURST_CALLS * 1e9 / (double)dt > (double)limit;
    tl_burst_ns = now;
    if (tl_burst && mc_shm) __atomic_fetch_add(&mc_shm->burst_calls, BURST_CALLS, __ATOMIC_RELAXED);
    if (!was && tl_burst) tl_burst_left = 0;
}

/* Nearly every object freed was never recorded, and looking for it in the
 * pointer table (a miss in a large table) would cost more than all the
 * sampling saves. So the recorded blocks of the object domain are also
 * counted in a counting filter (Fan et al. 2000, one hash): a counter per
 * bucket of addresses, raised when such a block is recorded and lowered
 * when it is forgotten; a free whose counter is 0 was certainly not
 * recorded. 2^16 one-byte counters (64 KiB, untouched until used) against
 * a few thousand recorded live objects in most programs: few false hits. A
 * counter that reaches 255 stays there (it then always says "maybe"). */
#define OBJ_FILTER_BITS 16
static uint8_t obj_filter[1u << OBJ_FILTER_BITS];

static inline uint8_t *obj_bucket(const void *p)
{
    /* No hash: a bucket per 16 bytes, modulo 1 MiB of address space, so
     * that the frees of neighbouring objects (a pool's) read the same
     * cache line of the filter rather than one each. */
    return &obj_filter[((uintptr_t)p >> 4) & ((1u << OBJ_FILTER_BITS) - 1)];
}

static inline void obj_filter_add(const void *p, int delta)
{
    uint8_t *b = obj_bucket(p);
    uint8_t v = __atomic_load_n(b, __ATOMIC_RELAXED);
    while (v != 255 && !__atomic_compare_exchange_n(b, &v, (uint8_t)(v + delta), 1,
                                                    __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

/* Exponential variate with the given mean, by inversion. */
static uint64_t next_interval(double mean)
{
    if (!tl_rng) tl_rng = mc_now_ns(CLOCK_MONOTONIC) ^ (uint64_t)(uintptr_t)&tl_rng;
    /* xorshift64* (Vigna 2016); 53 random bits make u in (0, 1]. */
    tl_rng ^= tl_rng >> 12;
    tl_rng ^= tl_rng << 25;
    tl_rng ^= tl_rng >> 27;
    double u = (double)((tl_rng * 0x2545f4914f6cdd1dull) >> 11) + 1.0;
    u /= 9007199254740992.0;
    double v = -log(u) * mean;
    return v < 1 ? 1 : (uint64_t)v;
}

/* Weight of a recorded block (its size as the pointer table keeps it, with
 * MC_OBJ for the object domain): 1/p(n), p(n) = 1 - exp(-n/R), R the mean
 * of its domain; 1 when its domain is not sampled. */
static void weights(size_t tagged, size_t *bytes, int64_t *count)
{
    size_t n = tagged & MC_SIZE_MAX;
    double mean = (tagged & MC_OBJ) ? obj_mean : (tagged & MC_BURST) ? burst_mean : sample_mean;
    if (mean <= 0) {
        *bytes = n;
        *count = MC_COUNT_SCALE;
        return;
    }
    double p = -expm1(-(double)n / mean);
    double w = p > 0 ? 1 / p : 1;
    *bytes = (size_t)llround((double)n * w);
    *count = llround(w * MC_COUNT_SCALE);
}

uint64_t mc_hooks_weight(uint64_t tagged)
{
    size_t b;
    int64_t c;
    weights((size_t)tagged, &b, &c);
    return b;
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

/* mc_hooks_own: the library's own allocations go to the buffer. A block
 * there is never freed (free ignores it) and realloc moves it out; the
 * few hundred bytes each thread creation takes leave room for a hundred
 * of them, and past that the program's heap serves them again. */
static __thread int tl_own TLS_FAST;

void mc_hooks_own(int on)
{
    tl_own = on;
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

static void record_slow(void *p, size_t size, uint64_t dom);

/* One step of a Poisson sampler's countdown (*left bytes to the next
 * point, mean apart): 1 when the block of size bytes falls short of the
 * point and is passed over; 0 when it holds it (the countdown restarts). */
static inline __attribute__((always_inline)) int passed_over(uint64_t *left, double mean,
                                                             size_t size)
{
    if (MC_UNLIKELY(!*left)) *left = next_interval(mean);
    if (MC_LIKELY(size < *left)) {
        *left -= size;
        return 1;
    }
    *left = next_interval(mean);
    return 0;
}

/* Records a new block of the given domain (0: malloc, MC_OBJ: CPython's
 * object allocator). The sampling decision is inline in every hook; the
 * recording itself (the stack walk, which leaves this library's frames
 * out) is not, so that a block not sampled costs the hook no stack frame
 * for the walk's buffers. */
static inline __attribute__((always_inline)) void record(void *p, size_t size, uint64_t dom)
{
    if (MC_UNLIKELY(!p) || !mc_active || in_hook) return;
    if (dom) {
        if (passed_over(&tl_obj_left, obj_mean, size)) return;
    } else if (sample_bytes) {
        if (passed_over(&tl_left, sample_mean, size)) return;
    } else if (burst_rate) {
        if (MC_UNLIKELY((++tl_calls & (BURST_CALLS - 1)) == 0)) burst_check();
        if (tl_burst) {
            if (passed_over(&tl_burst_left, burst_mean, size)) return;
            dom = MC_BURST;
        }
    }
    record_slow(p, size, dom);
}

static __attribute__((noinline)) void record_slow(void *p, size_t size, uint64_t dom)
{
    int saved = errno;
    in_hook = 1;
    if (mc_publish_own() == 0) {
        uint64_t ips[MC_MAX_DEPTH];
        uint32_t slot = mc_stack_intern(ips, mc_capture(ips, depth));
        size_t tagged = (size > MC_SIZE_MAX ? MC_SIZE_MAX : size) | dom, wb;
        int64_t wc;
        weights(tagged, &wb, &wc);
        if (dom || sample_bytes)
            mc_stack_mark_sampled(slot, (uint64_t)(dom == MC_OBJ     ? obj_mean
                                                   : dom == MC_BURST ? burst_mean
                                                                     : sample_mean));
        if (mc_ptr_insert((uintptr_t)p, tagged, slot) == 0) {
            if (dom == MC_OBJ) obj_filter_add(p, 1);
            mc_stack_alloc(slot, wb, wc);
        } else
            __atomic_fetch_add(&mc_shm->lost_ptrs, 1, __ATOMIC_RELAXED);
        if (MC_UNLIKELY((++events & 255) == 0)) {
            mc_publish_trim();
            if ((events & 4095) == 0) mc_publish_mallinfo();
        }
    }
    in_hook = 0;
    errno = saved;
}

#define record_alloc(p, size) record(p, size, 0)

/* Forgets a block that is about to be freed. Must run before the real free:
 * once freed, the address can be handed to another thread and recorded
 * again. Returns 1 when the block was known (its size as the table keeps
 * it and its stack in *size and *slot) and its bytes must be taken off
 * with finish_free. With sampled, most freed blocks were never recorded:
 * a look without the lock first (always so for the object domain). */
enum look { LOOK_EXACT, LOOK_SAMPLED, LOOK_OBJ };

static inline int forget(void *p, size_t *size, uint32_t *slot, enum look look)
{
    if (!p || !mc_active || in_hook) return 0;
    if (look == LOOK_SAMPLED && !mc_ptr_maybe_known((uintptr_t)p)) return 0;
    if (look == LOOK_OBJ && !__atomic_load_n(obj_bucket(p), __ATOMIC_RELAXED)) return 0;
    int saved = errno, known = 0;
    in_hook = 1;
    if (mc_publish_own() == 0) known = mc_ptr_remove((uintptr_t)p, size, slot) == 0;
    if (known && (*size & MC_OBJ)) obj_filter_add(p, -1);
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

/* Puts back a block forgotten before a realloc that failed: it is still
 * live and still the caller's. */
static void keep(void *old, size_t size, uint32_t slot)
{
    if (in_hook) return;
    int saved = errno;
    in_hook = 1;
    if (mc_ptr_insert((uintptr_t)old, size, slot) != 0)
        finish_free(size, slot);
    else if (size & MC_OBJ)
        obj_filter_add(old, 1);
    in_hook = 0;
    errno = saved;
}

/* ---- the hooks ---- */

#define boot_alloc_for_call() boot_alloc(size)

/* Calls from the dynamic loader pass straight through, before any
 * thread-local variable is touched, in the library memcreep attach loads:
 * there a thread's first touch of one makes the loader allocate its block
 * (__tls_get_addr), and where the program's own malloc is a canonical PLT
 * entry (a non-PIE executable that takes its address: python3.11) the
 * loader's malloc is that entry, routed here; without this the two would
 * call each other for ever. What the loader allocates is not the
 * program's anyway. Under memcreep run the variables are initial-exec and
 * never allocated. */
#ifdef MC_DYNAMIC_TLS
static uint64_t loader_lo, loader_hi;
#define FROM_LOADER()                                                                              \
    MC_UNLIKELY((uint64_t)(uintptr_t)__builtin_return_address(0) - loader_lo <                     \
                loader_hi - loader_lo)

static int find_loader(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "/ld-linux")) return 0;
    mc_module_extent(info, &loader_lo, &loader_hi);
    return 1;
}
#else
#define FROM_LOADER() 0
#endif

EXPORT void *malloc(size_t size)
{
    if (FROM_LOADER()) return real.malloc(size);
    ENSURE_REAL();
    if (MC_UNLIKELY(tl_own)) {
        void *b = boot_alloc(size);
        if (b) return b;
    }
    tl_raw = 1;
    void *p = real.malloc(size);
    record_alloc(p, size);
    return p;
}

EXPORT void free(void *p)
{
    size_t size;
    uint32_t slot;
    if (FROM_LOADER()) {
        if (!is_boot(p)) real.free(p);
        return;
    }
    if (!p || is_boot(p)) return;
    int known = forget(p, &size, &slot, sample_bytes || tl_burst ? LOOK_SAMPLED : LOOK_EXACT);
    real.free(p);
    if (known) finish_free(size, slot);
}

EXPORT void *calloc(size_t n, size_t size)
{
    if (FROM_LOADER() && real.calloc) return real.calloc(n, size);
    if (MC_UNLIKELY(!__atomic_load_n(&real.calloc, __ATOMIC_ACQUIRE))) {
        /* dlsym is running and asks for calloc: serve it statically. */
        if (__atomic_load_n(&resolving, __ATOMIC_ACQUIRE) || !resolve() || !real.calloc)
            return n && size > SIZE_MAX / n ? NULL : boot_alloc(n * size);
    }
    if (MC_UNLIKELY(tl_own) && !(n && size > SIZE_MAX / n)) {
        void *b = boot_alloc(n * size);
        if (b) return b;
    }
    tl_raw = 1;
    void *p = real.calloc(n, size);
    record_alloc(p, n * size);
    return p;
}

EXPORT void *realloc(void *old, size_t size)
{
    if (FROM_LOADER() && !is_boot(old)) return real.realloc(old, size);
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
    tl_raw = 1;
    int known = forget(old, &osize, &oslot, sample_bytes || tl_burst ? LOOK_SAMPLED : LOOK_EXACT);
    void *p = real.realloc(old, size);
    if (!p && size != 0) {
        if (known) keep(old, osize, oslot);
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
    tl_raw = 1;
    int rc = real.posix_memalign(out, align, size);
    if (rc == 0) record_alloc(*out, size);
    return rc;
}

EXPORT void *aligned_alloc(size_t align, size_t size)
{
    ENSURE_REAL();
    tl_raw = 1;
    void *p = real.aligned_alloc(align, size);
    record_alloc(p, size);
    return p;
}

EXPORT void *memalign(size_t align, size_t size)
{
    ENSURE_REAL();
    tl_raw = 1;
    void *p = real.memalign(align, size);
    record_alloc(p, size);
    return p;
}

EXPORT void *valloc(size_t size)
{
    ENSURE_REAL();
    tl_raw = 1;
    void *p = real.valloc(size);
    record_alloc(p, size);
    return p;
}

EXPORT void *pvalloc(size_t size)
{
    ENSURE_REAL();
    tl_raw = 1;
    void *p = real.pvalloc(size);
    record_alloc(p, size);
    return p;
}

/* ---- CPython's mem and object domains ----
 *
 * python_alloc.c puts these in front of the allocator each domain had (ctx
 * is that allocator: its functions and context). Each calls it and records
 * what the object allocator served itself; what it passed on to malloc (blocks over 512
 * bytes, or all with PYTHONMALLOC=malloc) the hooks above saw and counted
 * exactly, which they say in tl_raw. */

void mc_hooks_python(int objects)
{
    uint64_t r = burst_explicit ? burst_rate : 200000;
    if (mc_shm) {
        mc_shm->py_sample_bytes = objects ? (uint64_t)obj_mean : 0;
        mc_shm->burst_sample_bytes = r ? (uint64_t)burst_mean : 0;
    }
    __atomic_store_n(&burst_rate, r, __ATOMIC_RELEASE);
}

void *mc_obj_malloc(void *ctx, size_t n)
{
    const struct mc_allocator *a = ctx;
    tl_raw = 0;
    void *p = a->malloc(a->ctx, n);
    if (!tl_raw) record(p, n, MC_OBJ);
    return p;
}

void *mc_obj_calloc(void *ctx, size_t nelem, size_t elsize)
{
    const struct mc_allocator *a = ctx;
    tl_raw = 0;
    void *p = a->calloc(a->ctx, nelem, elsize);
    if (!tl_raw) record(p, nelem * elsize, MC_OBJ); /* no overflow when p */
    return p;
}

void *mc_obj_realloc(void *ctx, void *old, size_t n)
{
    const struct mc_allocator *a = ctx;
    size_t osize = 0;
    uint32_t oslot = 0;
    int known = forget(old, &osize, &oslot, LOOK_OBJ);
    tl_raw = 0;
    void *p = a->realloc(a->ctx, old, n);
    int raw = tl_raw;
    if (!p && n != 0) {
        if (known) keep(old, osize, oslot);
        return NULL;
    }
    if (!raw) record(p, n, MC_OBJ);
    if (known) finish_free(osize, oslot);
    return p;
}

/* The filter is looked at after the block is freed, its line fetched
 * before: the miss overlaps pymalloc's own work. That order is safe here:
 * pymalloc hands the address out again only to a thread holding the GIL,
 * which this one holds until it returns; a block pymalloc passes on to
 * free() the free hook forgets before glibc has it back. */
void mc_obj_free(void *ctx, void *p)
{
    const struct mc_allocator *a = ctx;
    size_t size;
    uint32_t slot;
    if (p) __builtin_prefetch(obj_bucket(p));
    a->free(a->ctx, p);
    if (forget(p, &size, &slot, LOOK_OBJ)) finish_free(size, slot);
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

void mc_publish_stop(void);

void mc_hooks_reset(void)
{
    memset(obj_filter, 0, sizeof(obj_filter));
}

void mc_hooks_settings(void)
{
    sample_bytes = mc_env_u64("MEMCREEP_SAMPLE_BYTES", 0);
    sample_mean = (double)sample_bytes;
    obj_mean = (double)mc_env_u64("MEMCREEP_PY_SAMPLE_BYTES", 8192);
    burst_mean = (double)mc_env_u64("MEMCREEP_BURST_SAMPLE_BYTES", 8192);
    if (burst_mean < 1) burst_mean = 1;
    burst_explicit = mc_getenv("MEMCREEP_BURST_RATE") != NULL;
    burst_rate = mc_env_u64("MEMCREEP_BURST_RATE", 0);
    depth = (int)mc_env_u64("MEMCREEP_DEPTH", MC_DEFAULT_DEPTH);
    if (depth < 1) depth = 1;
    if (depth > MC_MAX_DEPTH) depth = MC_MAX_DEPTH;
}

__attribute__((constructor(101))) static void mc_init(void)
{
    if (!__atomic_load_n(&real.malloc, __ATOMIC_ACQUIRE)) resolve();
#ifdef MC_DYNAMIC_TLS
    dl_iterate_phdr(find_loader, NULL);
#else
    in_hook = 1; /* nothing the set-up allocates is the target's */
    mc_hooks_settings();
    const char *dir = mc_getenv("MEMCREEP_DIR");
    if (dir && *dir) mc_fd_scan();
    mc_capture_init();
    mc_publish_start();
    in_hook = 0;
#endif
    /* Loaded by memcreep attach: mc_attach_start does the rest, once the
     * hooks are routed (libunwind's first walk must meet them). */
}

__attribute__((destructor)) static void mc_fini(void)
{
    in_hook = 1;
    mc_publish_stop();
    in_hook = 0;
}
