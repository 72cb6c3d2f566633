/* fd_hooks.c - the calls that make and close descriptors: socket, accept,
 * accept4, socketpair, pipe, pipe2, open, openat, creat (and their 64-bit
 * and fortified names), dup, dup2, dup3, fcntl(F_DUPFD*), epoll_create*,
 * eventfd, timerfd_create, signalfd, inotify_init*, memfd_create, fopen,
 * freopen, fclose, opendir, closedir, close, close_range, closefrom, and
 * descriptors that arrive in SCM_RIGHTS messages through recvmsg.
 *
 * Every hook calls the real function exactly as asked and returns what it
 * returned, with its errno; the accounting (fd_table.c) happens around it,
 * inside the reentrancy guard, and only in the process that owns the
 * tables (a vfork child shares them with its parent). A close is taken
 * off the table before the real close, so another thread cannot be handed
 * the same number in between. glibc's own internal opens (getaddrinfo,
 * popen, tmpfile) bypass these symbols and their closes do too, so they
 * are neither counted nor miscounted. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "internal.h"

#define EXPORT __attribute__((visibility("default")))

/* Resolves the real function once; the hook fails with ENOSYS if the C
 * library has none (it cannot happen with glibc, but never crash). */
#define REAL(ret, name, ...)                                                                       \
    typedef ret (*name##_fn)(__VA_ARGS__);                                                         \
    static name##_fn real_##name;                                                                  \
    static name##_fn get_##name(void)                                                              \
    {                                                                                              \
        name##_fn f = __atomic_load_n(&real_##name, __ATOMIC_ACQUIRE);                             \
        if (MC_UNLIKELY(!f)) {                                                                     \
            f = (name##_fn)dlsym(RTLD_NEXT, #name);                                                \
            __atomic_store_n(&real_##name, f, __ATOMIC_RELEASE);                                   \
        }                                                                                          \
        return f;                                                                                  \
    }

#define CALL_OR_FAIL(name, fail)                                                                   \
    name##_fn f = get_##name();                                                                    \
    if (MC_UNLIKELY(!f)) {                                                                         \
        errno = ENOSYS;                                                                            \
        return fail;                                                                               \
    }

/* Enters the accounting when it may run here; saves errno. */
static inline int enter(int *saved)
{
    if (!mc_active || mc_in_hook() || !mc_publish_owner()) return 0;
    *saved = errno;
    mc_set_in_hook(1);
    return 1;
}

static inline void leave(int saved)
{
    mc_set_in_hook(0);
    errno = saved;
}

static void opened(int fd, int kind)
{
    int e;
    if (fd < 0 || !enter(&e)) return;
    mc_fd_opened(fd, kind);
    leave(e);
}

static void opened_pair(const int *fds, int kind)
{
    int e;
    if (!enter(&e)) return;
    mc_fd_opened(fds[0], kind);
    mc_fd_opened(fds[1], kind);
    leave(e);
}

static void duped(int oldfd, int newfd)
{
    int e;
    if (newfd < 0 || oldfd == newfd || !enter(&e)) return;
    mc_fd_duped(oldfd, newfd);
    leave(e);
}

static void closing(int fd)
{
    int e;
    if (fd < 0 || !enter(&e)) return;
    mc_fd_closed(fd);
    leave(e);
}

/* open's mode argument exists only with O_CREAT or O_TMPFILE. */
static int wants_mode(int flags)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

#define VA_MODE(flags, last)                                                                       \
    mode_t mode = 0;                                                                               \
    if (wants_mode(flags)) {                                                                       \
        va_list ap;                                                                                \
        va_start(ap, last);                                                                        \
        mode = va_arg(ap, mode_t);                                                                 \
        va_end(ap);                                                                                \
    }

/* ---- sockets ---- */

REAL(int, socket, int, int, int)
EXPORT int socket(int domain, int type, int proto)
{
    CALL_OR_FAIL(socket, -1);
    int fd = f(domain, type, proto);
    if (fd >= 0) opened(fd, mc_fd_socket_kind(domain, type));
    return fd;
}

REAL(int, socketpair, int, int, int, int *)
EXPORT int socketpair(int domain, int type, int proto, int sv[2])
{
    CALL_OR_FAIL(socketpair, -1);
    int rc = f(domain, type, proto, sv);
    if (rc == 0) opened_pair(sv, mc_fd_socket_kind(domain, type));
    return rc;
}

/* An accepted socket has its listener's kind; asking the kernel costs
 * two system calls per connection, so only when the listener is unknown
 * is the answer taken from the new socket. */
static void accepted(int lfd, int fd)
{
    int e;
    if (fd < 0 || !enter(&e)) return;
    mc_fd_duped(lfd, fd);
    leave(e);
}

REAL(int, accept, int, struct sockaddr *, socklen_t *)
EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    CALL_OR_FAIL(accept, -1);
    int rc = f(fd, addr, len);
    accepted(fd, rc);
    return rc;
}

REAL(int, accept4, int, struct sockaddr *, socklen_t *, int)
EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    CALL_OR_FAIL(accept4, -1);
    int rc = f(fd, addr, len, flags);
    accepted(fd, rc);
    return rc;
}

/* Descriptors passed in SCM_RIGHTS control messages are new in this
 * process: they count at the stack that received them. */
REAL(ssize_t, recvmsg, int, struct msghdr *, int)
EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    CALL_OR_FAIL(recvmsg, -1);
    ssize_t rc = f(fd, msg, flags);
    int e;
    if (rc < 0 || !msg || msg->msg_controllen < sizeof(struct cmsghdr) || !enter(&e)) return rc;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *p = CMSG_DATA(c);
        for (size_t i = 0; i < n; i++) {
            int nfd;
            __builtin_memcpy(&nfd, p + i * sizeof(int), sizeof(int));
            mc_fd_opened(nfd, mc_fd_kind_of(nfd));
        }
    }
    leave(e);
    return rc;
}

/* ---- pipes and event descriptors ---- */

/* libunwind makes a pipe to test addresses through (it writes a byte from
 * the address and sees whether the kernel could read it). That pipe would
 * live in the program's descriptor space: its numbers shift the program's,
 * closefrom() and close loops take it away, and a program that reopens
 * those numbers gets its own descriptor written to. So libunwind gets no
 * pipe; its test is answered without one (unwind_validate.c). */
static int refused_to_unwinder(const void *caller)
{
    if (MC_LIKELY(!mc_capture_is_unwinder(caller))) return 0;
    errno = EMFILE;
    return 1;
}

REAL(int, pipe, int *)
EXPORT int pipe(int p[2])
{
    CALL_OR_FAIL(pipe, -1);
    if (refused_to_unwinder(__builtin_return_address(0))) return -1;
    int rc = f(p);
    if (rc == 0) opened_pair(p, MC_FD_PIPE);
    return rc;
}

REAL(int, pipe2, int *, int)
EXPORT int pipe2(int p[2], int flags)
{
    CALL_OR_FAIL(pipe2, -1);
    if (refused_to_unwinder(__builtin_return_address(0))) return -1;
    int rc = f(p, flags);
    if (rc == 0) opened_pair(p, MC_FD_PIPE);
    return rc;
}

#define EVENT_HOOK(name, proto_args, call_args)                                                    \
    EXPORT int name proto_args                                                                     \
    {                                                                                              \
        CALL_OR_FAIL(name, -1);                                                                    \
        int fd = f call_args;                                                                      \
        opened(fd, MC_FD_EVENT);                                                                   \
        return fd;                                                                                 \
    }

REAL(int, epoll_create, int)
EVENT_HOOK(epoll_create, (int size), (size))
REAL(int, epoll_create1, int)
EVENT_HOOK(epoll_create1, (int flags), (flags))
REAL(int, eventfd, unsigned int, int)
EVENT_HOOK(eventfd, (unsigned int initval, int flags), (initval, flags))
REAL(int, timerfd_create, int, int)
EVENT_HOOK(timerfd_create, (int clock, int flags), (clock, flags))
REAL(int, inotify_init)
EVENT_HOOK(inotify_init, (void), ())
REAL(int, inotify_init1, int)
EVENT_HOOK(inotify_init1, (int flags), (flags))

/* signalfd makes a descriptor only when given -1; otherwise it changes
 * the mask of an existing one. */
REAL(int, signalfd, int, const sigset_t *, int)
EXPORT int signalfd(int fd, const sigset_t *mask, int flags)
{
    CALL_OR_FAIL(signalfd, -1);
    int rc = f(fd, mask, flags);
    if (fd == -1) opened(rc, MC_FD_EVENT);
    return rc;
}

REAL(int, memfd_create, const char *, unsigned int)
EXPORT int memfd_create(const char *name, unsigned int flags)
{
    CALL_OR_FAIL(memfd_create, -1);
    int fd = f(name, flags);
    opened(fd, MC_FD_FILE);
    return fd;
}

/* ---- files ---- */

#define OPEN_HOOK(name)                                                                            \
    REAL(int, name, const char *, int, ...)                                                        \
    EXPORT int name(const char *path, int flags, ...)                                              \
    {                                                                                              \
        VA_MODE(flags, flags);                                                                     \
        CALL_OR_FAIL(name, -1);                                                                    \
        int fd = f(path, flags, mode);                                                             \
        opened(fd, MC_FD_FILE);                                                                    \
        return fd;                                                                                 \
    }

#define OPENAT_HOOK(name)                                                                          \
    REAL(int, name, int, const char *, int, ...)                                                   \
    EXPORT int name(int dirfd, const char *path, int flags, ...)                                   \
    {                                                                                              \
        VA_MODE(flags, flags);                                                                     \
        CALL_OR_FAIL(name, -1);                                                                    \
        int fd = f(dirfd, path, flags, mode);                                                      \
        opened(fd, MC_FD_FILE);                                                                    \
        return fd;                                                                                 \
    }

OPEN_HOOK(open)
OPEN_HOOK(open64)
OPENAT_HOOK(openat)
OPENAT_HOOK(openat64)

/* The fortified entry points (_FORTIFY_SOURCE with flags unknown at
 * compile time) take no mode: they refuse O_CREAT themselves. */
#define OPEN2_HOOK(name)                                                                           \
    REAL(int, name, const char *, int)                                                             \
    EXPORT int name(const char *path, int flags);                                                  \
    EXPORT int name(const char *path, int flags)                                                   \
    {                                                                                              \
        CALL_OR_FAIL(name, -1);                                                                    \
        int fd = f(path, flags);                                                                   \
        opened(fd, MC_FD_FILE);                                                                    \
        return fd;                                                                                 \
    }

#define OPENAT2_HOOK(name)                                                                         \
    REAL(int, name, int, const char *, int)                                                        \
    EXPORT int name(int dirfd, const char *path, int flags);                                       \
    EXPORT int name(int dirfd, const char *path, int flags)                                        \
    {                                                                                              \
        CALL_OR_FAIL(name, -1);                                                                    \
        int fd = f(dirfd, path, flags);                                                            \
        opened(fd, MC_FD_FILE);                                                                    \
        return fd;                                                                                 \
    }

OPEN2_HOOK(__open_2)
OPEN2_HOOK(__open64_2)
OPENAT2_HOOK(__openat_2)
OPENAT2_HOOK(__openat64_2)

#define CREAT_HOOK(name)                                                                           \
    REAL(int, name, const char *, mode_t)                                                          \
    EXPORT int name(const char *path, mode_t mode)                                                 \
    {                                                                                              \
        CALL_OR_FAIL(name, -1);                                                                    \
        int fd = f(path, mode);                                                                    \
        opened(fd, MC_FD_FILE);                                                                    \
        return fd;                                                                                 \
    }

CREAT_HOOK(creat)
CREAT_HOOK(creat64)

/* fopen and opendir open through glibc's internal entry points, which
 * the hooks above never see: their descriptors are taken from the stream. */
#define FOPEN_HOOK(name)                                                                           \
    REAL(FILE *, name, const char *, const char *)                                                 \
    EXPORT FILE *name(const char *path, const char *mode)                                          \
    {                                                                                              \
        CALL_OR_FAIL(name, NULL);                                                                  \
        FILE *fp = f(path, mode);                                                                  \
        if (fp) opened(fileno(fp), MC_FD_FILE);                                                    \
        return fp;                                                                                 \
    }

FOPEN_HOOK(fopen)
FOPEN_HOOK(fopen64)

/* freopen closes the stream's descriptor and opens another (maybe with
 * the same number); with a NULL path it only changes the mode. */
#define FREOPEN_HOOK(name)                                                                         \
    REAL(FILE *, name, const char *, const char *, FILE *)                                         \
    EXPORT FILE *name(const char *path, const char *mode, FILE *stream)                            \
    {                                                                                              \
        CALL_OR_FAIL(name, NULL);                                                                  \
        if (path && stream) closing(fileno(stream));                                               \
        FILE *fp = f(path, mode, stream);                                                          \
        if (fp && path) opened(fileno(fp), MC_FD_FILE);                                            \
        return fp;                                                                                 \
    }

FREOPEN_HOOK(freopen)
FREOPEN_HOOK(freopen64)

REAL(int, fclose, FILE *)
EXPORT int fclose(FILE *fp)
{
    CALL_OR_FAIL(fclose, EOF);
    if (fp) closing(fileno(fp));
    return f(fp);
}

REAL(DIR *, opendir, const char *)
EXPORT DIR *opendir(const char *path)
{
    CALL_OR_FAIL(opendir, NULL);
    DIR *d = f(path);
    if (d) opened(dirfd(d), MC_FD_FILE);
    return d;
}

REAL(int, closedir, DIR *)
EXPORT int closedir(DIR *d)
{
    CALL_OR_FAIL(closedir, -1);
    /* glibc's closedir(NULL) fails with EINVAL; the header says nonnull,
     * so the check is kept from being optimised away. */
    DIR *dd = d;
    __asm__("" : "+r"(dd));
    if (dd) closing(dirfd(dd));
    return f(d);
}

/* ---- copies ---- */

REAL(int, dup, int)
EXPORT int dup(int fd)
{
    CALL_OR_FAIL(dup, -1);
    int rc = f(fd);
    duped(fd, rc);
    return rc;
}

REAL(int, dup2, int, int)
EXPORT int dup2(int oldfd, int newfd)
{
    CALL_OR_FAIL(dup2, -1);
    int rc = f(oldfd, newfd);
    duped(oldfd, rc);
    return rc;
}

REAL(int, dup3, int, int, int)
EXPORT int dup3(int oldfd, int newfd, int flags)
{
    CALL_OR_FAIL(dup3, -1);
    int rc = f(oldfd, newfd, flags);
    duped(oldfd, rc);
    return rc;
}

/* fcntl's third argument is an int or a pointer depending on the command;
 * like glibc, it is passed on as a pointer-sized value, which carries
 * either unchanged on the supported ABIs. Only F_DUPFD* make descriptors. */
#define FCNTL_HOOK(name)                                                                           \
    REAL(int, name, int, int, ...)                                                                 \
    EXPORT int name(int fd, int cmd, ...)                                                          \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, cmd);                                                                         \
        void *arg = va_arg(ap, void *);                                                            \
        va_end(ap);                                                                                \
        CALL_OR_FAIL(name, -1);                                                                    \
        int rc = f(fd, cmd, arg);                                                                  \
        if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) duped(fd, rc);                               \
        return rc;                                                                                 \
    }

FCNTL_HOOK(fcntl)
FCNTL_HOOK(fcntl64)

/* ---- closing ---- */

REAL(int, close, int)
EXPORT int close(int fd)
{
    CALL_OR_FAIL(close, -1);
    closing(fd);
    return f(fd);
}

REAL(int, close_range, unsigned int, unsigned int, int)
EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
    CALL_OR_FAIL(close_range, -1);
    int e;
    /* Only a call that will close: valid range, no CLOSE_RANGE_CLOEXEC. */
    if (first <= last && (flags & ~(int)CLOSE_RANGE_UNSHARE) == 0 && enter(&e)) {
        mc_fd_closed_range(first, last);
        leave(e);
    }
    return f(first, last, flags);
}

REAL(void, closefrom, int)
EXPORT void closefrom(int lowfd)
{
    closefrom_fn f = get_closefrom();
    int e;
    if (lowfd >= 0 && enter(&e)) {
        mc_fd_closed_range((unsigned)lowfd, ~0u);
        leave(e);
    }
    if (f) f(lowfd);
}
