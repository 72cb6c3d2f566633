/* capture.c - takes the call stack at an allocation.
 *
 * The walk follows DWARF call-frame information (so it is right through
 * Debian's libraries, built without frame pointers): unwind.c's own walk
 * for the frames its cached rules describe, libunwind's unw_backtrace for
 * the stacks they do not. The frames of this library itself, and of
 * libunwind, are dropped so that frame 0 is the return address in the code
 * that called malloc. In a Python process the Python frames of the thread
 * replace the interpreter's own above its eval loop (python_frames.c). */
#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <libunwind.h>
#include <link.h>
#include <string.h>

#include "internal.h"

#define SKIP_SLACK 8 /* own frames above the caller at most */

static uint64_t self_lo, self_hi;
static uint64_t unw_lo, unw_hi;

struct range_query {
    uint64_t addr;
    uint64_t lo, hi;
};

/* Fills [*lo, *hi) with the addresses of a loaded object's PT_LOAD
 * segments; *hi is 0 when it has none. */
void mc_module_extent(const struct dl_phdr_info *info, uint64_t *lo, uint64_t *hi)
{
    *lo = UINT64_MAX;
    *hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uint64_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < *lo) *lo = a;
        if (a + ph->p_memsz > *hi) *hi = a + ph->p_memsz;
    }
}

/* dl_iterate_phdr callback: the extent of the module holding q->addr. */
static int find_range(struct dl_phdr_info *info, size_t size, void *data)
{
    struct range_query *q = data;
    uint64_t lo, hi;
    (void)size;
    mc_module_extent(info, &lo, &hi);
    if (q->addr >= lo && q->addr < hi) {
        q->lo = lo;
        q->hi = hi;
        return 1;
    }
    return 0;
}

static void module_range(const void *addr, uint64_t *lo, uint64_t *hi)
{
    struct range_query q = {(uint64_t)(uintptr_t)addr, 0, 0};
    dl_iterate_phdr(find_range, &q);
    *lo = q.lo;
    *hi = q.hi;
}

void mc_capture_init(void)
{
    module_range((const void *)(uintptr_t)mc_capture_init, &self_lo, &self_hi);
    module_range((const void *)(uintptr_t)unw_backtrace, &unw_lo, &unw_hi);
    /* Per-thread caches avoid a lock shared by all threads in libunwind. */
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
    /* libunwind sets itself up at its first walk: done here, in the
     * constructor, while the process has one thread (its validation pipe
     * is refused: unwind_validate.c). */
    void *buf[4];
    unw_backtrace(buf, 4);
    mc_unwind_init();
}

int mc_capture_is_unwinder(const void *caller)
{
    uint64_t a = (uint64_t)(uintptr_t)caller;
    return a >= unw_lo && a < unw_hi;
}

static inline int is_own(uint64_t ip)
{
    return (ip >= self_lo && ip < self_hi) || (ip >= unw_lo && ip < unw_hi);
}

/* Native frames of a stack taken by unw_backtrace into buf (n of them):
 * this library's and libunwind's left out, up to max. With stop set, the
 * first frame in the interpreter's eval loop ends them (*cut = 1). */
static int native(void *const *buf, int n, uint64_t *ips, int max, int stop, int *cut)
{
    int skip = 0, depth = 0;
    while (skip < n && is_own((uint64_t)(uintptr_t)buf[skip]))
        skip++;
    /* Further down, the only frame of this library is the trampoline that
     * starts joinable threads (thread_hooks.c): left out too, so a thread's
     * stacks look the same with and without memcreep. */
    for (int i = skip; i < n && depth < max; i++) {
        uint64_t ip = (uint64_t)(uintptr_t)buf[i];
        if (stop && mc_py_is_eval(ip)) {
            *cut = 1;
            break;
        }
        if (!is_own(ip)) ips[depth++] = ip;
    }
    return depth;
}

/* The walk is unwind.c's; libunwind's unw_backtrace takes over the whole
 * stack when a frame needs more than unwind.c's rules. In a Python
 * process the native frames stop at the innermost eval loop frame and the
 * thread's Python frames follow: what the interpreter's C frames above it
 * would say, the Python stack says in the program's terms. */
static int slow_walk(void **buf, int max, int py, uint64_t *ips, int *cut)
{
    int n = unw_backtrace(buf, max + SKIP_SLACK);
    return native(buf, n, ips, max, py, cut);
}

int mc_capture(uint64_t *ips, int max)
{
    uint64_t raw[MC_MAX_DEPTH + SKIP_SLACK];
    if (max > MC_MAX_DEPTH) max = MC_MAX_DEPTH;
    int py = mc_py_frames_on(), cut = 0, depth = 0;
    int n = mc_unwind(raw, max + SKIP_SLACK, py, &cut);
    if (MC_LIKELY(n >= 0)) depth = native((void *const *)raw, n, ips, max, 0, &cut);
    if (MC_UNLIKELY(n < 0 || mc_unwind_check_on)) {
        void *buf[MC_MAX_DEPTH + SKIP_SLACK];
        uint64_t slow[MC_MAX_DEPTH];
        int scut = 0, m = slow_walk(buf, max, py, slow, &scut);
        if (n >= 0) {
            mc_unwind_check(ips, depth, 0, (void *const *)slow, m);
        } else {
            if (mc_unwind_check_on) mc_unwind_check(NULL, 0, 1, NULL, 0);
            memcpy(ips, slow, (size_t)m * sizeof(*ips));
            depth = m;
            cut = scut;
        }
    }
    if (py) depth += mc_py_frames(ips + depth, max - depth);
    return depth;
}

int mc_capture_known(uint64_t addr)
{
    const struct mc_shm_module *m =
        (const struct mc_shm_module *)((const char *)mc_shm + mc_lay.off_modules);
    uint64_t n = __atomic_load_n(&mc_shm->module_count, __ATOMIC_ACQUIRE);
    if (n > mc_lay.module_cap) n = mc_lay.module_cap;
    for (uint64_t i = 0; i < n; i++)
        if (addr >= m[i].lo && addr < m[i].hi) return 1;
    return 0;
}
