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
    mc_count_event(MC_EV_THREAD);
    mc_set_in_hook(0);
    errno = saved;
    return rc;
}
