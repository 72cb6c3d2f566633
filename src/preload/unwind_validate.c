/* unwind_validate.c - libunwind's address test, without a descriptor.
 *
 * Where a frame has no unwind information libunwind falls back to
 * heuristics and first tests each address it will read: msync() or
 * mincore() (is it mapped?), then a write(2) of one byte from the address
 * into a pipe of its own (can the kernel read it, or is it a guard page?).
 * A pipe of the library's would sit in the program's descriptor space, so
 * the pipe hooks refuse it to libunwind (fd_hooks.c) and the write, which
 * libunwind makes through syscall(SYS_write, ...), is answered here with
 * process_vm_readv on the process itself: the same question (may the
 * kernel read one byte there?), asked with no descriptor at all.
 *
 * Every other syscall() call, the program's and libunwind's, goes to the C
 * library unchanged: syscall(2) reads six argument registers whatever the
 * number, so forwarding six is exact. */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"

#define EXPORT __attribute__((visibility("default")))

typedef long (*syscall_fn)(long, ...);
static syscall_fn real_syscall;

static syscall_fn get_real(void)
{
    syscall_fn f = __atomic_load_n(&real_syscall, __ATOMIC_ACQUIRE);
    if (MC_UNLIKELY(!f)) {
        f = (syscall_fn)dlsym(RTLD_NEXT, "syscall");
        __atomic_store_n(&real_syscall, f, __ATOMIC_RELEASE);
    }
    return f;
}

/* 1 when one byte at addr can be read. A kernel or a sandbox that refuses
 * process_vm_readv (seccomp without CAP_SYS_PTRACE) makes it 0: libunwind
 * then stops that stack where it would have guessed, rather than reading
 * a page it could not test. */
static int readable(syscall_fn f, const void *addr)
{
    char b;
    struct iovec local = {&b, 1}, remote = {(void *)(uintptr_t)addr, 1};
    return f(SYS_process_vm_readv, (long)getpid(), &local, 1L, &remote, 1L, 0L) == 1;
}

EXPORT long syscall(long nr, ...)
{
    va_list ap;
    long a[6];
    va_start(ap, nr);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    syscall_fn f = get_real();
    if (MC_UNLIKELY(!f)) {
        errno = ENOSYS;
        return -1;
    }
    if (MC_UNLIKELY(nr == SYS_write && mc_capture_is_unwinder(__builtin_return_address(0)))) {
        if (readable(f, (const void *)a[1])) return 1;
        errno = EFAULT;
        return -1;
    }
    return f(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
