/* rest.c - the library's rest thread: runs memcreep's malloc_trim(0)
 * probe inside the target when the target is at rest, not inside one of
 * its allocations.
 *
 * Allocator retention is memory glibc keeps although the program freed it.
 * Measured from inside an allocation, the probe lands at the start of the
 * target's next burst of work (what it measures is that burst), and never
 * in a target that has gone idle. So each tracked process gets one small
 * thread (128 KiB of stack, every signal blocked, started through the real
 * pthread_create so it is not the program's thread) that sleeps on a futex
 * in the mapping. When memcreep asks, it waits until the process is at
 * rest - less than REST_CPU of CPU time used over a REST_WINDOW and no
 * other thread waiting for a CPU, which a process serving nothing or
 * sleeping between bursts meets - for at most
 * REST_WAIT, then reads RSS and mallinfo2, trims, reads them again, and
 * names the live blocks at the top of the brk heap (what keeps free() from
 * shrinking it by itself). It never allocates, takes the allocator's locks
 * only inside mallinfo2 and malloc_trim (as any thread of the program
 * would) and counts itself in lib_threads so the target's thread count
 * stays a plain run's. A forked child starts its own (publish.c).
 *
 * It also takes the census of allocation age: on memcreep's request it
 * starts a new epoch for the blocks made from then on and adds up, per
 * stack, what is still alive from each earlier epoch (analysis/age.c). */
#include <fcntl.h>
#include <linux/futex.h>
#include <malloc.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define REST_WINDOW_NS 50000000ull   /* rest is judged over 50 ms */
#define REST_CPU_NS    5000000ull    /* using under 5 ms of CPU (10% of a core) */
#define REST_WAIT_NS   1500000000ull /* then trimmed anyway (memcreep waits 3 s) */
#define SLEEP_NS                                                                                   \
    200000000L /* the futex wait's bound: a lost wake, or                                          \
                  the end of the program's threads, is                                             \
                  seen within this */

static int running;

static uint64_t cpu_ns(void)
{
    return mc_now_ns(CLOCK_PROCESS_CPUTIME_ID);
}

/* Resident bytes from /proc/self/statm; 0 on failure. */
static uint64_t rss_now(void)
{
    char buf[128];
    if (mc_sys_read_proc("/proc/self/statm", buf, sizeof(buf)) < 0) return 0;
    /* "size resident shared ...", in pages: the second number. */
    const char *c = buf;
    while (*c && *c != ' ')
        c++;
    uint64_t pages = 0;
    for (c++; *c >= '0' && *c <= '9'; c++)
        pages = pages * 10 + (uint64_t)(*c - '0');
    return pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* The process's live threads now, from /proc/self/stat; 0 when unknown. num_threads (field 20)
 * still counts a leader that has ended while other threads run: it stays a zombie until they all
 * have, and its state (field 3) says so. */
/* The state field of a /proc stat line (R, S, D, Z, ...), and in *rest
 * what follows it; 0 when the line is cut short. The command name may hold
 * spaces and parentheses: the state follows the last ')'. */
static char stat_state(char *line, char **rest)
{
    char *c = strrchr(line, ')');
    if (!c || c[1] != ' ' || !c[2]) return 0;
    *rest = c + 2;
    return c[2];
}

static int threads_now(void)
{
    char buf[1024], *c;
    if (mc_sys_read_proc("/proc/self/stat", buf, sizeof(buf)) < 0) return 0;
    /* num_threads is the 17th field after the state. */
    char state = stat_state(buf, &c);
    if (!state) return 0;
    int leader_gone = state == 'Z';
    for (int field = 0; field < 17 && *c; c++)
        if (*c == ' ') field++;
    int v = 0;
    for (; *c >= '0' && *c <= '9'; c++)
        v = v * 10 + (*c - '0');
    return v - leader_gone;
}

/* Whether a thread of the process other than the caller is runnable now
 * (state R in /proc/self/task/TID/stat). On a loaded machine a program
 * preempted in the middle of its work uses no CPU either; what tells it
 * from one at rest is that its threads wait for a CPU, not for an event.
 * Raw system calls and buffers on the stack: the rest thread never
 * allocates. 0 when the list cannot be read (the CPU test alone decides). */
static int others_runnable(void)
{
    long dir = syscall(SYS_openat, AT_FDCWD, "/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return 0;
    long self = syscall(SYS_gettid);
    char ents[4096] __attribute__((aligned(8)));
    int runnable = 0;
    long n;
    while (!runnable && (n = syscall(SYS_getdents64, dir, ents, sizeof(ents))) > 0) {
        for (long off = 0; off < n && !runnable;) {
            const struct linux_dirent64 {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *d = (const void *)(ents + off);
            off += d->reclen;
            long tid = 0;
            const char *c = d->name;
            for (; *c >= '0' && *c <= '9'; c++)
                tid = tid * 10 + (*c - '0');
            if (*c || tid <= 0 || tid == self || c - d->name > 20) continue;
            static const char dir_path[] = "/proc/self/task/";
            char path[64], st[512], *after;
            size_t at = sizeof(dir_path) - 1, len = (size_t)(c - d->name);
            memcpy(path, dir_path, at);
            memcpy(path + at, d->name, len);
            memcpy(path + at + len, "/stat", 6);
            if (mc_sys_read_proc(path, st, sizeof(st)) < 0) continue;
            runnable = stat_state(st, &after) == 'R';
        }
    }
    syscall(SYS_close, dir);
    return runnable;
}

/* Waits until the process is at rest, or REST_WAIT has passed. Returns how
 * long it had been at rest when it returned (at least REST_WINDOW), 0 when
 * it never was. */
static uint64_t wait_for_rest(void)
{
    uint64_t start = mc_now_ns(CLOCK_MONOTONIC), quiet = 0;
    const struct timespec step = {0, 10000000L};
    uint64_t c0 = cpu_ns(), t0 = start;
    for (;;) {
        nanosleep(&step, NULL);
        uint64_t now = mc_now_ns(CLOCK_MONOTONIC), c = cpu_ns();
        if (now - t0 >= REST_WINDOW_NS) {
            if (c - c0 < REST_CPU_NS && !others_runnable())
                quiet += now - t0;
            else
                quiet = 0;
            if (quiet) return quiet;
            t0 = now;
            c0 = c;
        }
        if (now - start >= REST_WAIT_NS) return 0;
    }
}

void mc_rest_serve(uint64_t want, uint64_t rest_ns, int by_rest)
{
    /* The heap's top first, while the rest just seen most surely lasts.
     * The brk heap lies below the break; thread arenas and mmap'd chunks
     * lie far above it, so the highest tracked blocks below the break are
     * the ones at the heap's top. */
    int64_t others0 = (int64_t)(cpu_ns() - mc_now_ns(CLOCK_THREAD_CPUTIME_ID));
    struct mc_ptr_block top[4];
    uintptr_t brk = (uintptr_t)sbrk(0);
    int n = by_rest && brk && brk != (uintptr_t)-1 ? mc_ptr_highest_below(brk, top, 4) : 0;
    for (int i = 0; i < n; i++) {
        mc_shm->trim_pin[i].slot = top[i].slot;
        mc_shm->trim_pin[i].bytes = top[i].size;
        mc_shm->trim_pin[i].below_top = brk - (top[i].ptr + top[i].size);
    }
    mc_shm->trim_pins = (uint32_t)n;
    struct mallinfo2 mi = mallinfo2();
    uint64_t rss0 = rss_now();
    mc_shm->trim_free_before = mi.fordblks;
    mc_shm->trim_heap = mi.uordblks + mi.hblkhd;
    mc_shm->trim_rss_before = rss0;
    malloc_trim(0);
    mc_shm->trim_rss_after = rss_now();
    mi = mallinfo2();
    mc_shm->trim_free_after = mi.fordblks;
    mc_shm->mi_arena = mi.arena;
    mc_shm->mi_hblkhd = mi.hblkhd;
    mc_shm->mi_uordblks = mi.uordblks;
    mc_shm->mi_fordblks = mi.fordblks;
    mc_shm->mi_keepcost = mi.keepcost;
    __atomic_store_n(&mc_shm->mi_update_ns, mc_now_ns(CLOCK_MONOTONIC_COARSE) | 1,
                     __ATOMIC_RELEASE);

    /* The program's own work during the measurement: then it was not
     * taken at rest after all. */
    int64_t others = (int64_t)(cpu_ns() - mc_now_ns(CLOCK_THREAD_CPUTIME_ID)) - others0;
    mc_shm->trim_rest_ns = others < (int64_t)REST_CPU_NS ? rest_ns : 0;
    mc_shm->trim_by_rest = (uint32_t)by_rest;
    __atomic_store_n(&mc_shm->trim_done, want, __ATOMIC_RELEASE);
}

static uint64_t census_blocks;

static void census_add(uintptr_t ptr, uint32_t slot, uint64_t tagged, uint32_t epoch, void *arg)
{
    (void)ptr;
    struct mc_shm_stack_ext *ext = arg;
    census_blocks++;
    if (slot < mc_lay.stack_cap) ext[slot].age_bytes[epoch] += (int64_t)mc_hooks_weight(tagged);
}

/* What every stack holds by epoch, into its age_bytes: cleared for every
 * stack listed, then the pointer table walked once. */
static void census(struct mc_shm_header *h)
{
    uint64_t t0 = mc_now_ns(CLOCK_MONOTONIC);
    struct mc_shm_stack_ext *ext = (struct mc_shm_stack_ext *)((char *)h + mc_lay.off_stack_ext);
    const uint32_t *list = (const uint32_t *)((const char *)h + mc_lay.off_stack_list);
    uint64_t n = __atomic_load_n(&h->stack_count, __ATOMIC_ACQUIRE);
    if (n > mc_lay.stack_cap) n = mc_lay.stack_cap;
    memset(ext[MC_STACK_OVERFLOW].age_bytes, 0, sizeof(ext->age_bytes));
    for (uint64_t i = 0; i < n; i++) {
        uint32_t s = __atomic_load_n(&list[i], __ATOMIC_ACQUIRE);
        if (s && s <= mc_lay.stack_cap) memset(ext[s - 1].age_bytes, 0, sizeof(ext->age_bytes));
    }
    census_blocks = 0;
    mc_ptr_census(census_add, ext);
    h->age_census_ns = mc_now_ns(CLOCK_MONOTONIC) - t0;
    h->age_census_blocks = census_blocks;
}

static void *rest_thread(void *arg)
{
    (void)arg;
    mc_set_in_hook(1); /* nothing this thread does is the program's */
    struct mc_shm_header *h = mc_shm;
    for (;;) {
        /* Read before the requests: a ring after this is not missed. */
        uint32_t bell = (uint32_t)__atomic_load_n(&h->rest_bell, __ATOMIC_ACQUIRE);
        if (!mc_active || mc_shm != h || !mc_publish_owner()) break;
        /* Every thread of the program has ended (main called pthread_exit,
         * or a child forked by a thread saw that thread end): the process
         * would have exited; this thread must not keep it. Ending now
         * makes glibc's last-thread exit(0) happen here instead. */
        int nt = threads_now();
        if (nt > 0 && nt <= (int)__atomic_load_n(&h->lib_threads, __ATOMIC_RELAXED)) break;
        int served = 0;
        uint64_t want = __atomic_load_n(&h->age_request, __ATOMIC_ACQUIRE);
        if (want != __atomic_load_n(&h->age_done, __ATOMIC_ACQUIRE)) {
            mc_ptr_set_epoch((uint32_t)__atomic_load_n(&h->age_epoch, __ATOMIC_ACQUIRE));
            census(h);
            __atomic_store_n(&h->age_done, want, __ATOMIC_RELEASE);
            served = 1;
        }
        want = __atomic_load_n(&h->trim_request, __ATOMIC_ACQUIRE);
        if (want != __atomic_load_n(&h->trim_done, __ATOMIC_ACQUIRE)) {
            mc_rest_serve(want, wait_for_rest(), 1);
            served = 1;
        }
        if (served) continue;
        /* memcreep rings after each request; the bound covers a kernel
         * that would not pass the wake through its read-only mapping. */
        const struct timespec bound = {0, SLEEP_NS};
        syscall(SYS_futex, (uint32_t *)&h->rest_bell, FUTEX_WAIT, bell, &bound, NULL, 0);
    }
    __atomic_store_n(&running, 0, __ATOMIC_RELEASE);
    __atomic_fetch_sub(&h->lib_threads, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&h->rest_running, 0, __ATOMIC_RELEASE);
    return NULL;
}

int mc_rest_running(void)
{
    return __atomic_load_n(&running, __ATOMIC_ACQUIRE);
}

/* The thread starts from the allocation path once the process has lived
 * START_AFTER_NS: a short-lived process (a shell running one command, a
 * tool that execs at once) never gets one, nor does a program in its first
 * moments, when it may still set up namespaces (unshare(CLONE_NEWUSER)
 * and CLONE_NEWNS refuse a process with more than one thread). */
#define START_AFTER_NS 100000000ull
static uint64_t armed_ns; /* 0: not armed */

void mc_rest_arm(void)
{
    if (mc_env_u64("MEMCREEP_REST_THREAD", 1) == 0) return;
    armed_ns = mc_now_ns(CLOCK_MONOTONIC) | 1;
}

void mc_rest_poll(void)
{
    uint64_t a = __atomic_load_n(&armed_ns, __ATOMIC_RELAXED);
    if (MC_LIKELY(!a) || mc_now_ns(CLOCK_MONOTONIC) - a < START_AFTER_NS) return;
    if (!__atomic_compare_exchange_n(&armed_ns, &a, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        return;
    mc_rest_start();
}

void mc_rest_start(void)
{
    if (mc_sys_thread(rest_thread, 128 * 1024, &running) == 0)
        __atomic_store_n(&mc_shm->rest_running, 1, __ATOMIC_RELEASE);
}

void mc_rest_after_fork(void)
{
    /* The parent's thread is not in the child; its count came with the
     * copy of the header. */
    if (__atomic_load_n(&running, __ATOMIC_ACQUIRE)) {
        __atomic_fetch_sub(&mc_shm->lib_threads, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&mc_shm->rest_running, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&running, 0, __ATOMIC_RELEASE);
    }
    mc_rest_arm();
}
