/* sys.c - helpers for the preloaded library that never allocate through
 * malloc: the library's own memory comes from mmap so that it neither
 * recurses into the hooks nor shows up in the target's numbers. */
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* Returns zeroed memory straight from the kernel; the caller frees it with
 * mc_sys_free and the same size. NULL when the kernel refuses. */
void *mc_sys_alloc(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void mc_sys_free(void *p, size_t size)
{
    if (p) munmap(p, size);
}

/* Returns the clock's time in nanoseconds (0 if the clock fails). */
uint64_t mc_now_ns(int clock)
{
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The settings memcreep gave an attach (attach.c): "NAME=value" strings,
 * NUL-separated, ending with an empty one. A private copy, set once before
 * recording starts; the program's environment is never changed. */
static char attach_env[4096];

int mc_env_set_attach(const char *conf)
{
    size_t n = strlen(conf);
    if (n + 2 > sizeof(attach_env)) return -1;
    memcpy(attach_env, conf, n + 1);
    attach_env[n + 1] = 0;
    for (size_t i = 0; i < n; i++)
        if (attach_env[i] == '\n') attach_env[i] = 0;
    return 0;
}

const char *mc_getenv(const char *name)
{
    size_t l = strlen(name);
    for (const char *e = attach_env; *e; e += strlen(e) + 1)
        if (!strncmp(e, name, l) && e[l] == '=') return e + l + 1;
    return getenv(name);
}

/* getenv does not allocate; the parse is done by hand so that a malformed
 * value falls back to the default instead of half-parsing. */
uint64_t mc_env_u64(const char *name, uint64_t dflt)
{
    const char *s = mc_getenv(name);
    uint64_t v = 0;
    if (!s || !*s) return dflt;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return dflt;
        if (v > (UINT64_MAX - 9) / 10) return dflt;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    return v;
}

/* The program's stderr is its own: a warning goes to the file "warnings"
 * of the run directory, which memcreep prints on its own stderr at the end
 * of the run. One write(2) per line, O_APPEND, so that lines from several
 * processes do not mix. Without a run directory it is dropped. */
void mc_warn(const char *msg, const char *detail)
{
    char buf[512], pid[16], path[4200];
    const char *dir = mc_publish_run_dir();
    if (!dir || !*dir) return;
    snprintf(path, sizeof(path), "%s/warnings", dir);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    size_t n = 0;
    const char *parts[6] = {"process ", pid, ": ", msg, detail ? ": " : "", detail ? detail : ""};
    for (int i = 0; i < 6; i++) {
        size_t l = strlen(parts[i]);
        if (l > sizeof(buf) - 2 - n) l = sizeof(buf) - 2 - n;
        memcpy(buf + n, parts[i], l);
        n += l;
    }
    buf[n++] = '\n';
    int fd =
        (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return;
    ssize_t w = syscall(SYS_write, fd, buf, n);
    (void)w;
    syscall(SYS_close, fd);
}

/* The library's threads are not the program's: started through the real
 * pthread_create (not the hook, which would count it), detached, named
 * "memcreep", with every signal blocked (signals are the program's). The caller counts it
 * in lib_threads first (*running set to 1); a failed start takes that
 * back. */
int mc_sys_thread(void *(*fn)(void *), size_t stack, int *running)
{
    typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    /* What glibc allocates for the thread (dlsym's lookup, the thread's
     * DTV) is not the program's: it stays out of its heap. */
    mc_hooks_own(1);
    create_fn create = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
    if (!create || !mc_shm) {
        mc_hooks_own(0);
        return -1;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, stack);
    pthread_t t;
    __atomic_store_n(running, 1, __ATOMIC_RELEASE);
    __atomic_fetch_add(&mc_shm->lib_threads, 1, __ATOMIC_RELAXED);
    int rc = create(&t, &a, fn, NULL);
    mc_hooks_own(0);
    /* Named, so that top -H and /proc tell memcreep's threads from the
     * program's. */
    if (rc == 0) pthread_setname_np(t, "memcreep");
    if (rc != 0 && __atomic_exchange_n(running, 0, __ATOMIC_ACQ_REL))
        __atomic_fetch_sub(&mc_shm->lib_threads, 1, __ATOMIC_RELAXED);
    pthread_attr_destroy(&a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc == 0 ? 0 : -1;
}

/* Through raw system calls: the descriptor hooks must not see the
 * library's own reads. */
long mc_sys_read_proc(const char *path, char *buf, size_t len)
{
    long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    long n = syscall(SYS_read, fd, buf, len - 1);
    syscall(SYS_close, fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    return n;
}
