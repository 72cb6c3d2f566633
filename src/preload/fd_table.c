/* fd_table.c - open descriptors by the stack that opened them.
 *
 * A private table indexed by descriptor number says, for each open
 * descriptor the hooks saw, its kind and the stack slot that opened it.
 * Counts live in the shared mapping: per stack (struct mc_shm_stack_ext)
 * and per kind for the process (header fd_live). A descriptor number is
 * open at most once at a time, so the table heals itself: when a number
 * comes back from an open call while the table still holds it (closed by
 * a path the hooks do not see, such as a raw system call), the old entry
 * is taken off first and no count drifts for longer than that.
 *
 * The table is a flat array rather than a hash: descriptor numbers are
 * small and dense (the kernel hands out the lowest free one), so an array
 * of 2^20 entries is 8 MiB of address space of which only the pages of
 * numbers in use are ever touched. Numbers beyond it are counted as lost.
 *
 * At start the image records what it inherited (0-2, and whatever an exec
 * left open because it had no O_CLOEXEC) with no stack, found by reading
 * /proc/self/fd with raw system calls before anything else in the library
 * runs: what the library itself opens later (libunwind's pipe) is not the
 * program's and is never seen. A forked child inherits both the
 * table (private memory, copied) and the counts (its copy of the mapping),
 * which is what it inherited from its parent. */
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#define FD_MAX      (1u << 20)
#define E_VALID     (1ull << 63)
#define E_INHERITED (1ull << 62)
#define E_KIND(e)   ((int)(((e) >> 32) & 0xff))
#define E_SLOT(e)   ((uint32_t)(e))

static uint64_t *table;
static int hiwater = -1; /* highest number ever recorded */

static inline struct mc_shm_stack_ext *ext_at(uint32_t slot)
{
    return (struct mc_shm_stack_ext *)((char *)mc_shm + mc_lay.off_stack_ext) + slot;
}

/* Adds (sign 1) or removes (sign -1) an entry from the counts. */
static void account(uint64_t e, int sign)
{
    int kind = E_KIND(e);
    if (kind >= MC_FD_KINDS) return;
    __atomic_fetch_add(&mc_shm->fd_live[kind], sign, __ATOMIC_RELAXED);
    if (!(e & E_INHERITED) && E_SLOT(e) < mc_lay.stack_cap)
        __atomic_fetch_add(&ext_at(E_SLOT(e))->fd_live[kind], sign, __ATOMIC_RELAXED);
}

/* Stores e for fd, taking off whatever the number held before; counts it
 * only once the mapping exists (the scan at start runs before). */
static void put(int fd, uint64_t e)
{
    uint64_t old = __atomic_exchange_n(&table[fd], e, __ATOMIC_ACQ_REL);
    if (mc_shm) {
        if (old & E_VALID) account(old, -1);
        account(e, 1);
    }
    int hi = __atomic_load_n(&hiwater, __ATOMIC_RELAXED);
    while (fd > hi &&
           !__atomic_compare_exchange_n(&hiwater, &hi, fd, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

static int usable(int fd)
{
    if (fd < 0 || !table) return 0;
    if ((unsigned)fd < FD_MAX) return 1;
    if (mc_shm) __atomic_fetch_add(&mc_shm->fd_lost, 1, __ATOMIC_RELAXED);
    return 0;
}

int mc_fd_socket_kind(int domain, int type)
{
    type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (domain == AF_UNIX) return MC_FD_UNIX;
    if (domain != AF_INET && domain != AF_INET6) return MC_FD_SOCKET;
    if (type == SOCK_STREAM) return MC_FD_TCP;
    if (type == SOCK_DGRAM) return MC_FD_UDP;
    return MC_FD_SOCKET;
}

int mc_fd_kind_of(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0) return MC_FD_OTHER;
    switch (st.st_mode & S_IFMT) {
    case S_IFSOCK: {
        int dom = 0, type = 0;
        socklen_t l = sizeof(dom);
        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) != 0) return MC_FD_SOCKET;
        l = sizeof(type);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) != 0) return MC_FD_SOCKET;
        return mc_fd_socket_kind(dom, type);
    }
    case S_IFIFO:
        return MC_FD_PIPE;
    case S_IFREG:
    case S_IFDIR:
        return MC_FD_FILE;
    case 0:
        return MC_FD_EVENT; /* anonymous inodes: epoll, eventfd, timerfd... */
    default:
        return MC_FD_OTHER;
    }
}

void mc_fd_opened(int fd, int kind)
{
    if (!usable(fd) || mc_publish_own() != 0) return;
    uint64_t ips[MC_MAX_DEPTH];
    int d = mc_capture(ips, MC_DEFAULT_DEPTH);
    uint32_t slot = mc_stack_intern(ips, d);
    __atomic_fetch_add(&ext_at(slot)->fd_opened, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&mc_shm->fd_opened, 1, __ATOMIC_RELAXED);
    put(fd, E_VALID | ((uint64_t)kind << 32) | slot);
}

void mc_fd_duped(int oldfd, int newfd)
{
    if (oldfd < 0 || newfd < 0) return;
    uint64_t e =
        table && (unsigned)oldfd < FD_MAX ? __atomic_load_n(&table[oldfd], __ATOMIC_ACQUIRE) : 0;
    mc_fd_opened(newfd, e & E_VALID ? E_KIND(e) : mc_fd_kind_of(newfd));
}

void mc_fd_closed(int fd)
{
    if (fd < 0 || (unsigned)fd >= FD_MAX || !table || mc_publish_own() != 0) return;
    uint64_t old = __atomic_exchange_n(&table[fd], 0, __ATOMIC_ACQ_REL);
    if (old & E_VALID) account(old, -1);
}

void mc_fd_closed_range(unsigned first, unsigned last)
{
    int hi = __atomic_load_n(&hiwater, __ATOMIC_RELAXED);
    if (hi < 0 || first > (unsigned)hi) return;
    if (last > (unsigned)hi) last = (unsigned)hi;
    for (unsigned fd = first; fd <= last; fd++)
        mc_fd_closed((int)fd);
}

/* getdents64 records; glibc declares no wrapper for the raw call. */
struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

void mc_fd_scan(void)
{
    if (table) {
        /* An attach after a detach: what was known then is stale. */
        int hi = __atomic_exchange_n(&hiwater, -1, __ATOMIC_ACQ_REL);
        if (hi >= 0) memset(table, 0, (size_t)(hi + 1) * sizeof(*table));
    } else {
        table = mc_sys_alloc((size_t)FD_MAX * sizeof(*table));
    }
    if (!table) return;
    /* Raw calls: the hooks must not see the library's own descriptor. */
    int dir =
        (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return;
    char buf[4096] __attribute__((aligned(8)));
    long n;
    while ((n = syscall(SYS_getdents64, dir, buf, sizeof(buf))) > 0) {
        for (long off = 0; off < n;) {
            struct linux_dirent64 *de = (struct linux_dirent64 *)(buf + off);
            off += de->d_reclen;
            int fd = 0;
            const char *c = de->d_name;
            if (*c < '0' || *c > '9') continue;
            for (; *c >= '0' && *c <= '9'; c++)
                fd = fd * 10 + (*c - '0');
            if (fd == dir || !usable(fd)) continue;
            put(fd, E_VALID | E_INHERITED | ((uint64_t)mc_fd_kind_of(fd) << 32));
        }
    }
    syscall(SYS_close, dir);
}

void mc_fd_start(void)
{
    int hi = __atomic_load_n(&hiwater, __ATOMIC_RELAXED);
    for (int fd = 0; table && fd <= hi; fd++) {
        if (!(table[fd] & E_VALID)) continue;
        account(table[fd], 1);
        mc_shm->fd_inherited++;
    }
}
