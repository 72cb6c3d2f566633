/* net_hooks.c - the connect() hook: counts TCP connections by the stack
 * that started them, so that a program making a new connection for every
 * unit of work (a client built per call, no pool) shows as CONNECTION
 * CHURN with the line responsible, even when nothing leaks. The counter
 * lives in the stack's record and in the header; connect's result and
 * errno are the real function's. */
#include <dlfcn.h>
#include <errno.h>
#include <sys/socket.h>

#include "internal.h"

static int (*real_connect)(int, const struct sockaddr *, socklen_t);

static int is_tcp(int fd, const struct sockaddr *a)
{
    if (!a || (a->sa_family != AF_INET && a->sa_family != AF_INET6)) return 0;
    int type = 0;
    socklen_t l = sizeof(type);
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) == 0 && type == SOCK_STREAM;
}

__attribute__((visibility("default"))) int connect(int fd, const struct sockaddr *a, socklen_t len)
{
    if (MC_UNLIKELY(!real_connect)) {
        real_connect =
            (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
        if (!real_connect) {
            errno = ENOSYS;
            return -1;
        }
    }
    int rc = real_connect(fd, a, len);
    if ((rc != 0 && errno != EINPROGRESS) || !mc_active || mc_in_hook()) return rc;
    int saved = errno;
    mc_set_in_hook(1);
    if (is_tcp(fd, a)) mc_count_connect();
    mc_set_in_hook(0);
    errno = saved;
    return rc;
}
