/* attach.c - the library in a process memcreep attached to (memcreep
 * attach; the command side is cli/inject.c). memcreep loads the library
 * with dlopen from a thread it borrowed with ptrace and calls
 * mc_attach_start there with its settings; from then on the library works
 * as if preloaded, for what happens after that moment: the same mapping,
 * stacks, counters and Python bridge, with the hooks reached through the
 * modules' GOT entries (got.c) instead of symbol interposition.
 *
 * A thread of the library's own (the watcher) then looks every 100 ms for
 * two things: memcreep asking it to detach (detach_request), and memcreep
 * gone (its pid no longer the process that started, read from /proc: a
 * memcreep killed outright must not leave its hooks behind). Either way it
 * detaches: the GOT entries get back what they had, the Python bridge
 * takes its allocator out, the library's threads end and the hooks, still
 * reachable from calls already under way, pass everything through. The
 * library stays loaded (it cannot be unloaded safely while a call may be
 * inside it) and inert; the mapping is replaced by anonymous memory so that
 * its file's pages go once memcreep removes it. Blocks allocated while
 * attached stay ordinary blocks of the C library: their frees, before or
 * after the detach, are the program's as usual. Every 500 ms the watcher
 * also routes the modules the program loaded since (dlopen). */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define EXPORT __attribute__((visibility("default")))

#define WATCH_NS    100000000L /* the watcher looks this often */
#define REPATCH_NS  500000000ull
#define DETACH_WAIT 3000000000ull /* the library's threads get this long to end */

uint32_t mc_attach_gen;

/* This instance's attach: none yet, attached, detaching (memcreep may
 * already have seen the header say so and ended), or detached and so ready
 * for another. */
enum { ST_NONE, ST_ATTACHED, ST_DETACHING, ST_DETACHED };
static int state;
static int watcher_running; /* counted in lib_threads while 1 */
static int detaching;
static pid_t memcreep_pid;
static uint64_t memcreep_start; /* its start time in clock ticks (/proc/PID/stat) */

/* The 22nd field of /proc/PID/stat (start time since boot, in ticks), or 0
 * when the process is gone or a zombie (killed, not yet reaped: gone for
 * what matters here). The name in field 2 may hold spaces and
 * parentheses: the fields are counted from the last ')'. */
static uint64_t start_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (mc_sys_read_proc(path, buf, sizeof(buf)) <= 0) return 0;
    const char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X') return 0;
    int field = 2;
    for (; *p && field < 22; p++)
        if (*p == ' ') field++;
    uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (uint64_t)(*p - '0');
    return v;
}

static int memcreep_alive(void)
{
    return !memcreep_pid || start_ticks(memcreep_pid) == memcreep_start;
}

/* Takes the library out: see the top of the file. Runs in the watcher. */
static void detach(void)
{
    __atomic_store_n(&state, ST_DETACHING, __ATOMIC_RELEASE);
    __atomic_store_n(&detaching, 1, __ATOMIC_RELEASE);
    /* The Python bridge restores CPython's allocator under the GIL and
     * ends; the rest thread ends once recording is off. */
    mc_python_stop();
    /* Recording stops before the entries go back: a hook still walking a
     * stack when its module's entries were restored would have libunwind
     * open its validation pipe through the C library itself, a descriptor
     * left in the program (unwind_validate.c). The walks under way when
     * recording stopped end well within the pause. */
    __atomic_store_n(&mc_active, 0, __ATOMIC_RELEASE);
    const struct timespec drain = {0, 50000000L};
    nanosleep(&drain, NULL);
    mc_got_unpatch();
    struct mc_shm_header *h = mc_shm;
    uint64_t until = mc_now_ns(CLOCK_MONOTONIC) + DETACH_WAIT;
    const struct timespec step = {0, 10000000L};
    while (__atomic_load_n(&h->lib_threads, __ATOMIC_ACQUIRE) > 1 &&
           mc_now_ns(CLOCK_MONOTONIC) < until)
        nanosleep(&step, NULL);
    /* The pointer table's memory goes back: nothing of memcreep's stays
     * in the program's RSS but the library's pages. */
    mc_ptr_reset();
    mc_hooks_reset();
    __atomic_store_n(&h->attach_state, MC_ATTACH_OFF, __ATOMIC_RELEASE);
    __atomic_fetch_sub(&h->lib_threads, 1, __ATOMIC_RELAXED);
    mc_publish_release();
    __atomic_store_n(&watcher_running, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&state, ST_DETACHED, __ATOMIC_RELEASE);
}

static void *watcher(void *arg)
{
    (void)arg;
    mc_set_in_hook(1); /* nothing this thread does is the program's */
    struct mc_shm_header *h = mc_shm;
    uint64_t served = __atomic_load_n(&h->detach_request, __ATOMIC_ACQUIRE);
    uint64_t next_patch = mc_now_ns(CLOCK_MONOTONIC) + REPATCH_NS;
    const struct timespec step = {0, WATCH_NS};
    for (;;) {
        nanosleep(&step, NULL);
        if (!mc_publish_owner()) return NULL; /* a vfork child's view */
        if (__atomic_load_n(&h->detach_request, __ATOMIC_ACQUIRE) != served || !memcreep_alive())
            break;
        uint64_t now = mc_now_ns(CLOCK_MONOTONIC);
        if (now >= next_patch) {
            mc_got_patch();
            next_patch = now + REPATCH_NS;
        }
    }
    detach();
    return NULL;
}

static int start_watcher(void)
{
    return mc_sys_thread(watcher, 64 * 1024, &watcher_running);
}

int mc_attach_detaching(void)
{
    return __atomic_load_n(&detaching, __ATOMIC_ACQUIRE);
}

void mc_attach_after_fork(void)
{
    /* The parent's watcher is not in the child; its count came with the
     * copy of the header. The child watches for itself. */
    if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) != ST_ATTACHED || mc_attach_detaching()) return;
    if (__atomic_exchange_n(&watcher_running, 0, __ATOMIC_ACQ_REL))
        __atomic_fetch_sub(&mc_shm->lib_threads, 1, __ATOMIC_RELAXED);
    start_watcher();
}

/* Called by memcreep (through ptrace, in a thread of the program it
 * borrowed) right after loading the library. conf holds its settings as
 * "NAME=value" lines, those of a run's environment (MEMCREEP_DIR, ...)
 * and MEMCREEP_ATTACH_PID / MEMCREEP_ATTACH_START, memcreep's pid and
 * start time. Returns the number of GOT entries routed, or -errno:
 * -EALREADY when recording already (preloaded by memcreep run, or
 * attached), -EBUSY while the last detach is still under way, -EINVAL for
 * bad settings, -ENOENT when nothing could be routed, -EIO when the
 * mapping could not be made (a warning says why). A detached library can
 * be attached again: everything it keeps is started afresh. */
EXPORT int mc_attach_start(const char *conf)
{
    /* The last detach's end (its watcher releasing the mapping) may still
     * be under way: memcreep ended as soon as the header said detached. */
    const struct timespec step = {0, 1000000L};
    for (int i = 0; i < 1000 && __atomic_load_n(&state, __ATOMIC_ACQUIRE) == ST_DETACHING; i++)
        nanosleep(&step, NULL);
    if (mc_active) return -EALREADY;
    int st = __atomic_load_n(&state, __ATOMIC_ACQUIRE);
    if (st == ST_DETACHING) return -EBUSY;
    if (st == ST_ATTACHED)
        return __atomic_load_n(&watcher_running, __ATOMIC_ACQUIRE) ? -EALREADY : -EBUSY;
    if (!__atomic_compare_exchange_n(&state, &st, ST_ATTACHED, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return -EBUSY;
    mc_attach_gen++;
    __atomic_store_n(&detaching, 0, __ATOMIC_RELEASE);
    /* The borrowed thread's own guard is put back as it was. */
    int saved = errno, rc, was_in_hook = mc_in_hook();
    mc_set_in_hook(1);
    if (!conf || mc_env_set_attach(conf) != 0) {
        rc = -EINVAL;
        goto out;
    }
    memcreep_pid = (pid_t)mc_env_u64("MEMCREEP_ATTACH_PID", 0);
    memcreep_start = mc_env_u64("MEMCREEP_ATTACH_START", 0);
    if (mc_got_init() <= 0) {
        rc = -ENOENT;
        goto out;
    }
    /* Routed first, while recording is off (the hooks pass everything
     * through): libunwind sets itself up at its first walk and must meet
     * the pipe hook that refuses it a descriptor (unwind_validate.c). */
    mc_got_patch();
    mc_capture_init();
    mc_hooks_settings();
    mc_fd_scan();
    mc_publish_start();
    if (!mc_active) {
        mc_got_unpatch();
        rc = -EIO;
        goto out;
    }
    mc_shm->attach_ns = mc_now_ns(CLOCK_REALTIME);
    mc_shm->attach_python = (uint32_t)mc_python_bridge();
    rc = (int)mc_got_patched();
    __atomic_store_n(&mc_shm->attach_patched, (uint32_t)rc, __ATOMIC_RELAXED);
    __atomic_store_n(&mc_shm->attach_state, MC_ATTACH_ON, __ATOMIC_RELEASE);
    if (start_watcher() != 0) {
        /* Without the watcher nothing would ever take the hooks out. */
        mc_got_unpatch();
        __atomic_store_n(&mc_active, 0, __ATOMIC_RELEASE);
        mc_shm->attach_state = MC_ATTACH_OFF;
        rc = -EAGAIN;
    }
out:
    if (rc < 0) __atomic_store_n(&state, ST_DETACHED, __ATOMIC_RELEASE);
    dlerror(); /* failed lookups leave nothing for the program's dlerror() */
    mc_set_in_hook(was_in_hook);
    errno = saved;
    return rc;
}
