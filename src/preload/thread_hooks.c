/* thread_hooks.c - the pthread_create hook: counts the threads each stack
 * creates, so that THREAD CREEP (seen from /proc) can name the code that
 * keeps starting threads. The thread itself is started exactly as asked:
 * same attributes, routine and argument; the result is the real one. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>

#include "internal.h"

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
static create_fn real_create;

__attribute__((visibility("default"))) int pthread_create(pthread_t *t, const pthread_attr_t *a,
                                                          void *(*fn)(void *), void *arg)
{
    if (MC_UNLIKELY(!real_create)) {
        real_create = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
        if (!real_create) return EAGAIN;
    }
    int rc = real_create(t, a, fn, arg);
    if (rc != 0 || !mc_active || mc_in_hook()) return rc;
    int saved = errno;
    mc_set_in_hook(1);
    if (mc_publish_own() == 0) {
        uint64_t ips[MC_MAX_DEPTH];
        int d = mc_capture(ips, MC_DEFAULT_DEPTH);
        uint32_t slot = mc_stack_intern(ips, d);
        struct mc_shm_stack *st =
            (struct mc_shm_stack *)((char *)mc_shm + mc_shm->off_stacks) + slot;
        __atomic_fetch_add(&st->threads, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&mc_shm->threads_created, 1, __ATOMIC_RELAXED);
    }
    mc_set_in_hook(0);
    errno = saved;
    return rc;
}
