/* thread_hooks.c - threads by the stack that created them.
 *
 * pthread_create counts the threads each stack starts, so that THREAD
 * CREEP (seen from /proc) names the code that keeps starting threads.
 *
 * A joinable thread that returns but is never joined (nor detached) is a
 * leak /proc does not show: the kernel task is gone, but its stack mapping
 * and descriptor stay until someone joins it. To see those, a joinable
 * thread starts in a small trampoline that sets a thread-specific value
 * whose destructor runs when the thread ends (by return, pthread_exit or
 * cancellation); pthread_join, its timed variants and pthread_detach mark
 * the record released. A thread that ended while not released counts in
 * its creating stack's threads_unjoined until it is joined or detached.
 *
 * Otherwise the thread is started exactly as asked: same attributes,
 * routine, argument and result. Records live in a fixed private array;
 * when it is full, threads start untracked (counted, not wrapped). */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "internal.h"

#define EXPORT  __attribute__((visibility("default")))
#define THR_MAX 65536

enum { T_USED = 1, T_EXITED = 2, T_RELEASED = 4, T_COUNTED = 8 };

struct thr {
    void *(*fn)(void *);
    void *arg;
    pthread_t id; /* 0 until known: set by the creator and by the thread */
    uint32_t slot;
    uint32_t state;
    uint32_t gen;    /* bumped at each reuse, so a late creator writes no
                        id into a record that has moved on */
    uint32_t attach; /* mc_attach_gen when made: its slot is that mapping's */
};

static struct thr *tab;
static uint32_t tab_hi; /* records [0, tab_hi) were ever used */
static int tab_lock;
static pthread_key_t end_key;
static int have_key;

static void lock(void)
{
    while (__atomic_exchange_n(&tab_lock, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&tab_lock, __ATOMIC_RELAXED))
            __builtin_ia32_pause();
}

static void unlock(void)
{
    __atomic_store_n(&tab_lock, 0, __ATOMIC_RELEASE);
}

static inline struct mc_shm_stack_ext *ext_at(uint32_t slot)
{
    return (struct mc_shm_stack_ext *)((char *)mc_shm + mc_lay.off_stack_ext) + slot;
}

/* Adds d to the unjoined count of the record's stack and of the process. */
static void unjoined(const struct thr *t, int d)
{
    if (t->attach != mc_attach_gen) return; /* counted in an earlier attach's mapping */
    if (t->slot < mc_lay.stack_cap)
        __atomic_fetch_add(&ext_at(t->slot)->threads_unjoined, d, __ATOMIC_RELAXED);
    __atomic_fetch_add(&mc_shm->threads_unjoined, d, __ATOMIC_RELAXED);
}

static struct thr *take(void)
{
    struct thr *t = NULL;
    lock();
    for (uint32_t i = 0; i < THR_MAX; i++) {
        if (tab[i].state) continue;
        t = &tab[i];
        t->state = T_USED;
        t->id = 0;
        t->gen++;
        if (i >= tab_hi) tab_hi = i + 1;
        break;
    }
    unlock();
    return t;
}

/* Called with the lock held: frees a record both ended and released. */
static void settle(struct thr *t)
{
    if ((t->state & (T_EXITED | T_RELEASED)) == (T_EXITED | T_RELEASED)) t->state = 0;
}

/* Key destructor: the thread ends. */
static void thread_ended(void *arg)
{
    struct thr *t = arg;
    if (!t || !tab || mc_in_hook()) return;
    mc_set_in_hook(1);
    lock();
    t->state |= T_EXITED;
    if (!(t->state & T_RELEASED) && mc_publish_owner()) {
        t->state |= T_COUNTED;
        unjoined(t, 1);
    }
    settle(t);
    unlock();
    mc_set_in_hook(0);
}

static void *trampoline(void *arg)
{
    struct thr *t = arg;
    void *(*fn)(void *) = t->fn;
    void *a = t->arg;
    mc_set_in_hook(1); /* a signal handler here must not take the lock again */
    lock();
    t->id = pthread_self(); /* it may detach itself before its creator returns */
    unlock();
    mc_set_in_hook(0);
    pthread_setspecific(end_key, t);
    return fn(a);
}

/* Marks the thread id released (joined or detached). */
static void released(pthread_t id)
{
    if (!tab || !mc_active || mc_in_hook()) return;
    int saved = errno;
    mc_set_in_hook(1);
    lock();
    for (uint32_t i = 0; i < tab_hi; i++) {
        struct thr *t = &tab[i];
        if (!(t->state & T_USED) || (t->state & T_RELEASED) || !pthread_equal(t->id, id)) continue;
        t->state |= T_RELEASED;
        if (t->state & T_COUNTED) unjoined(t, -1);
        settle(t);
        break;
    }
    unlock();
    mc_set_in_hook(0);
    errno = saved;
}

void mc_thread_after_fork(void)
{
    tab_lock = 0; /* the thread that held it is not in the child */
}

void mc_thread_start(void)
{
    /* Once: an attach after a detach keeps the records of threads that
     * are still running (they end, or are joined, later). */
    if (tab) return;
    have_key = pthread_key_create(&end_key, thread_ended) == 0;
    if (have_key) tab = mc_sys_alloc(THR_MAX * sizeof(*tab));
}

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
static create_fn real_create;

static int joinable(const pthread_attr_t *a)
{
    int st = PTHREAD_CREATE_JOINABLE;
    return !a || pthread_attr_getdetachstate(a, &st) != 0 || st == PTHREAD_CREATE_JOINABLE;
}

EXPORT int pthread_create(pthread_t *out, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
    if (MC_UNLIKELY(!real_create)) {
        real_create = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
        if (!real_create) return EAGAIN;
    }
    if (!mc_active || mc_in_hook() || !mc_publish_owner()) return real_create(out, a, fn, arg);
    int saved = errno;
    mc_set_in_hook(1);
    /* The creating stack, captured once, names both counts. */
    uint64_t ips[MC_MAX_DEPTH];
    int own = mc_publish_own() == 0;
    uint32_t slot = own ? mc_stack_intern(ips, mc_capture(ips, MC_DEFAULT_DEPTH)) : 0;
    struct thr *t = own && tab && joinable(a) ? take() : NULL;
    mc_set_in_hook(0);
    errno = saved;

    int rc;
    if (t) {
        t->fn = fn;
        t->arg = arg;
        t->slot = slot;
        t->attach = mc_attach_gen;
        uint32_t gen = t->gen;
        rc = real_create(out, a, trampoline, t);
        /* The id, before the caller can join or detach the thread (which
         * may not have run yet). */
        saved = errno;
        mc_set_in_hook(1);
        lock();
        if (rc != 0)
            t->state = 0;
        else if (t->gen == gen && (t->state & T_USED))
            t->id = *out;
        unlock();
        mc_set_in_hook(0);
        errno = saved;
    } else {
        rc = real_create(out, a, fn, arg);
    }
    if (rc == 0 && own) mc_count_thread(slot);
    return rc;
}

/* Each join variant releases the thread only when it succeeded. */
typedef int (*join_fn)(pthread_t, void **);
static join_fn real_join, real_tryjoin;

EXPORT int pthread_join(pthread_t id, void **ret)
{
    if (MC_UNLIKELY(!real_join)) {
        real_join = (join_fn)dlsym(RTLD_NEXT, "pthread_join");
        if (!real_join) return ENOSYS;
    }
    int rc = real_join(id, ret);
    if (rc == 0) released(id);
    return rc;
}

EXPORT int pthread_tryjoin_np(pthread_t id, void **ret)
{
    if (MC_UNLIKELY(!real_tryjoin)) {
        real_tryjoin = (join_fn)dlsym(RTLD_NEXT, "pthread_tryjoin_np");
        if (!real_tryjoin) return ENOSYS;
    }
    int rc = real_tryjoin(id, ret);
    if (rc == 0) released(id);
    return rc;
}

typedef int (*timedjoin_fn)(pthread_t, void **, const struct timespec *);
static timedjoin_fn real_timedjoin;

EXPORT int pthread_timedjoin_np(pthread_t id, void **ret, const struct timespec *abstime)
{
    if (MC_UNLIKELY(!real_timedjoin)) {
        real_timedjoin = (timedjoin_fn)dlsym(RTLD_NEXT, "pthread_timedjoin_np");
        if (!real_timedjoin) return ENOSYS;
    }
    int rc = real_timedjoin(id, ret, abstime);
    if (rc == 0) released(id);
    return rc;
}

typedef int (*clockjoin_fn)(pthread_t, void **, clockid_t, const struct timespec *);
static clockjoin_fn real_clockjoin;

EXPORT int pthread_clockjoin_np(pthread_t id, void **ret, clockid_t clk,
                                const struct timespec *abstime)
{
    if (MC_UNLIKELY(!real_clockjoin)) {
        real_clockjoin = (clockjoin_fn)dlsym(RTLD_NEXT, "pthread_clockjoin_np");
        if (!real_clockjoin) return ENOSYS;
    }
    int rc = real_clockjoin(id, ret, clk, abstime);
    if (rc == 0) released(id);
    return rc;
}

typedef int (*detach_fn)(pthread_t);
static detach_fn real_detach;

EXPORT int pthread_detach(pthread_t id)
{
    if (MC_UNLIKELY(!real_detach)) {
        real_detach = (detach_fn)dlsym(RTLD_NEXT, "pthread_detach");
        if (!real_detach) return ENOSYS;
    }
    int rc = real_detach(id);
    if (rc == 0) released(id);
    return rc;
}
