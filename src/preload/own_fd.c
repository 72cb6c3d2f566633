/* own_fd.c - the descriptors the library itself keeps open in the target.
 *
 * The only long-lived ones are libunwind's: a non-blocking pipe it writes
 * an address into to test whether that address can be read (when a frame
 * has no unwind information). Left where pipe2 puts them they take the
 * program's lowest free numbers: its next open() returns 5 instead of 3, a
 * daemon that closes everything and reopens 0, 1, 2 gets libunwind's pipe
 * as stdout, and after the program's closefrom(3) libunwind writes into
 * whatever the program opened next at those numbers.
 *
 * So every descriptor of the library is moved to a high number, above the
 * program's soft RLIMIT_NOFILE when the hard limit allows (open() can
 * never return such a number and dup2() onto it fails with EBADF, exactly
 * as without memcreep), otherwise to the top of the range below it. The
 * program cannot see them through the calls that name descriptors: close()
 * of one fails with EBADF as if it were not open, closefrom() and
 * close_range() close around them. The set is tiny (MAX_OWN) and read
 * lock-free on every close. */
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#define MAX_OWN 8
/* Numbers are kept below this even with a larger limit: the kernel's table
 * of a process grows to the highest number it holds. */
#define OWN_CEILING 65536

static int own[MAX_OWN]; /* 0 = free slot, else fd + 1 */

/* The number at or above which the library's descriptors go, or -1 when
 * none can be found (RLIMIT_NOFILE unreadable). *raise says the soft limit
 * must be lifted for the move. */
static int own_floor(struct rlimit *rl, int *raise)
{
    *raise = 0;
    if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, rl) != 0) return -1;
    if (rl->rlim_cur < 64) return -1;
    if (rl->rlim_cur < OWN_CEILING - MAX_OWN &&
        (rl->rlim_max == RLIM_INFINITY || rl->rlim_max >= rl->rlim_cur + MAX_OWN)) {
        *raise = 1;
        return (int)rl->rlim_cur;
    }
    rlim_t top = rl->rlim_cur < OWN_CEILING ? rl->rlim_cur : OWN_CEILING;
    return (int)(top - MAX_OWN);
}

static void remember(int fd)
{
    for (int i = 0; i < MAX_OWN; i++) {
        int expect = 0;
        if (__atomic_compare_exchange_n(&own[i], &expect, fd + 1, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED))
            return;
    }
}

int mc_own_fd_move(int fd)
{
    if (fd < 0) return fd;
    struct rlimit rl, raised;
    int raise, floor = own_floor(&rl, &raise);
    if (floor < 0 || fd >= floor) {
        remember(fd);
        return fd;
    }
    if (raise) {
        raised = rl;
        raised.rlim_cur = rl.rlim_cur + MAX_OWN;
        if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &raised, NULL) != 0) raise = 0;
    }
    /* Without the raise the move goes to the top below the limit. */
    int at =
        raise ? floor : (int)((rl.rlim_cur < OWN_CEILING ? rl.rlim_cur : OWN_CEILING) - MAX_OWN);
    int nfd = (int)syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, at);
    if (raise) syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &rl, NULL);
    if (nfd < 0) { /* no room up there: keep it where it is */
        remember(fd);
        return fd;
    }
    syscall(SYS_close, fd);
    remember(nfd);
    return nfd;
}

int mc_own_fd(int fd)
{
    if (fd < 0) return 0;
    for (int i = 0; i < MAX_OWN; i++)
        if (__atomic_load_n(&own[i], __ATOMIC_ACQUIRE) == fd + 1) return 1;
    return 0;
}

void mc_own_fd_forget(int fd)
{
    for (int i = 0; i < MAX_OWN; i++) {
        int expect = fd + 1;
        if (__atomic_compare_exchange_n(&own[i], &expect, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            return;
    }
}

int mc_own_fd_in(unsigned first, unsigned last)
{
    for (int i = 0; i < MAX_OWN; i++) {
        int v = __atomic_load_n(&own[i], __ATOMIC_ACQUIRE);
        if (v && (unsigned)(v - 1) >= first && (unsigned)(v - 1) <= last) return 1;
    }
    return 0;
}

int mc_own_fd_next(unsigned from)
{
    int best = -1;
    for (int i = 0; i < MAX_OWN; i++) {
        int v = __atomic_load_n(&own[i], __ATOMIC_ACQUIRE) - 1;
        if (v >= 0 && (unsigned)v >= from && (best < 0 || v < best)) best = v;
    }
    return best;
}
