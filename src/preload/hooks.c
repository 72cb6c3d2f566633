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
#include <stdlib.h>
#include <string.h>
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
    int saved = errno;
    in_hook = 1;
    if (mc_publish_own() == 0) {
        uint64_t ips[MC_MAX_DEPTH];
        int d = mc_capture(ips, depth);
        uint32_t slot = mc_stack_intern(ips, d);
        if (mc_ptr_insert((uintptr_t)p, size, slot) == 0)
            mc_stack_alloc(slot, size);
        else
            __atomic_fetch_add(&mc_shm->lost_ptrs, 1, __ATOMIC_RELAXED);
        if (MC_UNLIKELY((++events & 4095) == 0)) mc_publish_mallinfo();
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
    int saved = errno, known = 0;
    in_hook = 1;
    if (mc_publish_own() == 0) known = mc_ptr_remove((uintptr_t)p, size, slot) == 0;
    in_hook = 0;
    errno = saved;
    return known;
}

static inline void finish_free(size_t size, uint32_t slot)
{
    mc_stack_free(slot, size);
    if (MC_UNLIKELY((++events & 4095) == 0)) {
        int saved = errno;
        in_hook = 1;
        mc_publish_mallinfo();
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
            if (mc_ptr_insert((uintptr_t)old, osize, oslot) != 0) mc_stack_free(oslot, osize);
            in_hook = 0;
            errno = saved;
        }
        return NULL;
    }
    if (known) finish_free(osize, oslot);
    record_alloc(p, size);
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

/* ---- start and end ---- */

void mc_publish_start(void);
void mc_publish_stop(void);

__attribute__((constructor(101))) static void mc_init(void)
{
    if (!__atomic_load_n(&real.malloc, __ATOMIC_ACQUIRE)) resolve();
    in_hook = 1; /* nothing the set-up allocates is the target's */
    depth = (int)mc_env_u64("MEMCREEP_DEPTH", MC_DEFAULT_DEPTH);
    if (depth < 1) depth = 1;
    if (depth > MC_MAX_DEPTH) depth = MC_MAX_DEPTH;
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
