/* inject.c - loading libmemcreep.so into a running process (see inject.h).
 *
 * One thread of the target is borrowed with PTRACE_SEIZE + PTRACE_INTERRUPT;
 * every other thread keeps running, so a lock another thread holds is let
 * go as usual and the calls made in the borrowed one cannot deadlock on
 * it. The borrowed thread must not hold a lock dlopen or malloc needs
 * itself: it is taken while blocked in a system call that waits (epoll,
 * poll, accept, read, a sleep, a futex: never called inside malloc with its
 * lock held), or else while running outside the C library and the loader.
 * Its registers, the x87/SSE/AVX state included, are saved; a call is made
 * by pointing rip at the function, the arguments in rdi and rsi, the
 * strings below the stack's red zone, and 0 as the return address: the
 * return faults at address 0, which stops the thread for ptrace before any
 * handler of the program could see it, and the fault is never delivered.
 * orig_rax is -1 during the calls so that the kernel does not restart the
 * interrupted system call into them; the saved registers put back give it
 * its restart as if it had been stopped by a signal with no handler.
 *
 * The functions are found in the target's own files (through its
 * /proc/PID/root, so a container's C library is read, not ours): dlopen and
 * dlerror in its libc.so.6 (glibc 2.34 and later hold them there),
 * mc_attach_start in the library, at the load bias dlopen's handle (a
 * struct link_map, whose first member is l_addr) gives. */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/inject.h"
#include "common/util.h"

const char *mc_inject_strerror(enum mc_inject_err e)
{
    switch (e) {
    case MC_INJECT_OK:
        return "attached";
#define X(name, text)                                                                              \
    case MC_INJECT_##name:                                                                         \
        return text;
        MC_INJECT_ERRORS(X)
#undef X
    }
    return "unknown error";
}

/* ---- what /proc says ---- */

static long read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0) return -1;
    buf[n] = 0;
    return n;
}

/* A "Name:\tvalue" line of /proc/PID/status as a number, -1 if absent. */
static long long status_field(pid_t pid, const char *name)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (read_small(path, buf, sizeof(buf)) < 0) return -1;
    size_t l = strlen(name);
    for (char *p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, name, l) && p[l] == ':') return strtoll(p + l + 1, NULL, 0);
    return -1;
}

/* 1 when this process has CAP_SYS_PTRACE in its effective set. */
static int have_cap_ptrace(void)
{
    char buf[4096];
    if (read_small("/proc/self/status", buf, sizeof(buf)) < 0) return 0;
    char *p = strstr(buf, "CapEff:");
    return p && ((strtoull(p + 7, NULL, 16) >> 19) & 1);
}

/* A mapped file of the process: the start of its mapping at file offset
 * 0 whose path ends with suffix ("/libc.so.6"), its path in path. */
static int find_mapping(pid_t pid, const char *suffix, uint64_t *start, char *path, size_t len)
{
    char mp[64], line[PATH_MAX + 128];
    snprintf(mp, sizeof(mp), "/proc/%d/maps", (int)pid);
    FILE *f = fopen(mp, "re");
    if (!f) return -errno;
    int rc = -ENOENT;
    size_t sl = strlen(suffix);
    while (fgets(line, sizeof(line), f)) {
        unsigned long long lo, off;
        char perms[8];
        int name_at = 0;
        if (sscanf(line, "%llx-%*x %7s %llx %*s %*s %n", &lo, perms, &off, &name_at) < 3 ||
            !name_at)
            continue;
        char *name = line + name_at;
        name[strcspn(name, "\n")] = 0;
        size_t nl = strlen(name);
        if (off != 0 || nl < sl || strcmp(name + nl - sl, suffix)) continue;
        *start = lo;
        snprintf(path, len, "%s", name);
        rc = 0;
        break;
    }
    fclose(f);
    return rc;
}

/* 1 when the process maps a file whose name contains s. */
static int maps_contain(pid_t pid, const char *s)
{
    char mp[64], line[PATH_MAX + 128];
    snprintf(mp, sizeof(mp), "/proc/%d/maps", (int)pid);
    FILE *f = fopen(mp, "re");
    if (!f) return 0;
    int found = 0;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, s) != NULL;
    fclose(f);
    return found;
}

/* 1 when path names the same file here and in the process' root, 0 when
 * not, -errno when its root cannot be looked into. */
static int same_in_root(pid_t pid, const char *path)
{
    char there[PATH_MAX + 32];
    struct stat a, b;
    snprintf(there, sizeof(there), "/proc/%d/root%s", (int)pid, path);
    if (stat(there, &b) != 0) return errno == EACCES || errno == EPERM ? -errno : 0;
    return stat(path, &a) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Why ptrace was refused, in full. */
static enum mc_inject_err why_not(pid_t pid, int err, char *msg, size_t len)
{
    long long tracer = status_field(pid, "TracerPid");
    if (tracer > 0) {
        snprintf(msg, len, "PID %d is traced by PID %lld already (a debugger, strace?)", (int)pid,
                 tracer);
        return MC_INJECT_TRACED;
    }
    char buf[32];
    int scope =
        read_small("/proc/sys/kernel/yama/ptrace_scope", buf, sizeof(buf)) > 0 ? atoi(buf) : 0;
    int cap = have_cap_ptrace();
    long long uid = status_field(pid, "Uid");
    if (scope >= 3)
        snprintf(msg, len, "tracing is disabled on this machine (kernel.yama.ptrace_scope=3)");
    else if (scope == 2 && !cap)
        snprintf(msg, len,
                 "kernel.yama.ptrace_scope=2 lets only CAP_SYS_PTRACE trace: run "
                 "memcreep as root");
    else if (uid >= 0 && (uid_t)uid != geteuid() && geteuid() != 0)
        snprintf(msg, len,
                 "PID %d belongs to another user (uid %lld): run memcreep as that user "
                 "or as root",
                 (int)pid, uid);
    else if (geteuid() == 0 && !cap)
        snprintf(msg, len,
                 "memcreep lacks CAP_SYS_PTRACE (a container started without "
                 "--cap-add SYS_PTRACE?)");
    else if (scope == 1 && !cap)
        snprintf(msg, len,
                 "kernel.yama.ptrace_scope=1 lets a process trace its own children "
                 "only: run memcreep as root, or set it to 0");
    else
        snprintf(msg, len, "cannot trace PID %d: %s", (int)pid, strerror(err));
    return err == ESRCH ? MC_INJECT_GONE : MC_INJECT_PERM;
}

enum mc_inject_err mc_inject_check(pid_t pid, const char *lib, const char *dir, char *msg,
                                   size_t len)
{
    char path[64], libc[PATH_MAX];
    uint64_t base;
    snprintf(path, sizeof(path), "/proc/%d", (int)pid);
    if (pid <= 0 || access(path, F_OK) != 0 || status_field(pid, "Pid") != pid) {
        snprintf(msg, len, "no process %d", (int)pid);
        return MC_INJECT_GONE;
    }
    /* A stopped process (SIGSTOP, a job stopped in a shell) would be let
     * run by the calls. */
    char st[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    const char *rp = read_small(path, st, sizeof(st)) > 0 ? strrchr(st, ')') : NULL;
    if (rp && (rp[2] == 'T' || rp[2] == 't') && status_field(pid, "TracerPid") <= 0) {
        snprintf(msg, len, "PID %d is stopped (SIGSTOP, or a stopped job): continue it first",
                 (int)pid);
        return MC_INJECT_STOPPED;
    }
    /* Its maps are readable only with the right to trace it. */
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return why_not(pid, errno == ENOENT ? ESRCH : EPERM, msg, len);
    close(fd);
    if (find_mapping(pid, "/libc.so.6", &base, libc, sizeof(libc)) != 0) {
        if (maps_contain(pid, "ld-musl") || maps_contain(pid, "libc.musl")) {
            snprintf(msg, len, "PID %d runs on musl, not glibc: only its outside view is possible",
                     (int)pid);
            return MC_INJECT_NOT_GLIBC;
        }
        if (!maps_contain(pid, "/ld-linux")) {
            snprintf(msg, len, "PID %d is statically linked: no library can be loaded into it",
                     (int)pid);
            return MC_INJECT_STATIC;
        }
        snprintf(msg, len, "PID %d has no glibc 2.34 or later (libc.so.6) loaded", (int)pid);
        return MC_INJECT_NOT_GLIBC;
    }
    /* libmemcreep-attach.so from an earlier attach may be there: it is
     * taken again (dlopen gives the same handle). The preloaded one means
     * memcreep run is watching it already. */
    if (maps_contain(pid, "/libmemcreep.so")) {
        snprintf(msg, len, "PID %d runs under memcreep run already", (int)pid);
        return MC_INJECT_LOADED;
    }
    const char *need[2] = {lib, dir};
    for (int i = 0; i < 2; i++) {
        int same = same_in_root(pid, need[i]);
        if (same < 0) return why_not(pid, -same, msg, len);
        if (!same) {
            snprintf(msg, len,
                     "PID %d is in another mount namespace, where %s is not the same "
                     "file (docs/attach.md: containers)",
                     (int)pid, need[i]);
            return MC_INJECT_MOUNT_NS;
        }
    }
    return MC_INJECT_OK;
}

/* ---- symbols ---- */

/* The value of the defined dynamic symbol name in the ELF file at path
 * (read through the process' root), and the vaddr of its first PT_LOAD
 * (what a mapping at offset 0 starts at, before the bias). */
static int elf_symbol(pid_t pid, const char *path, const char *name, uint64_t *value,
                      uint64_t *first_load)
{
    char p[PATH_MAX + 32];
    snprintf(p, sizeof(p), "/proc/%d/root%s", (int)pid, path);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    elf_version(EV_CURRENT);
    Elf *e = elf_begin(fd, ELF_C_READ, NULL);
    int rc = -ENOENT;
    size_t nph = 0;
    *first_load = UINT64_MAX;
    if (e && elf_getphdrnum(e, &nph) == 0)
        for (size_t i = 0; i < nph; i++) {
            GElf_Phdr ph;
            if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_LOAD && ph.p_offset == 0)
                *first_load = ph.p_vaddr & ~(uint64_t)0xfff;
        }
    Elf_Scn *scn = NULL;
    while (e && rc && (scn = elf_nextscn(e, scn)) != NULL) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM || !sh.sh_entsize) continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
            GElf_Sym s;
            if (!gelf_getsym(d, (int)i, &s) || s.st_shndx == SHN_UNDEF || !s.st_value) continue;
            const char *n = elf_strptr(e, sh.sh_link, s.st_name);
            if (n && !strcmp(n, name)) {
                *value = s.st_value;
                rc = 0;
                break;
            }
        }
    }
    if (e) elf_end(e);
    close(fd);
    if (*first_load == UINT64_MAX) *first_load = 0;
    return rc;
}

/* ---- the borrowed thread ---- */

struct borrowed {
    pid_t pid, tid;
    struct user_regs_struct regs;
    char xstate[16384];
    struct iovec xiov;
    int have_xstate;
};

/* System calls a thread blocks in while waiting for work, never inside
 * malloc or the loader with their locks held. */
static int idle_syscall(long nr)
{
    static const long idle[] = {0 /* read */,
                                7 /* poll */,
                                23 /* select */,
                                34 /* pause */,
                                35 /* nanosleep */,
                                43 /* accept */,
                                45 /* recvfrom */,
                                47 /* recvmsg */,
                                61 /* wait4 */,
                                128 /* rt_sigtimedwait */,
                                130 /* rt_sigsuspend */,
                                202 /* futex */,
                                230 /* clock_nanosleep */,
                                232 /* epoll_wait */,
                                247 /* waitid */,
                                270 /* pselect6 */,
                                271 /* ppoll */,
                                281 /* epoll_pwait */,
                                288 /* accept4 */,
                                441 /* epoll_pwait2 */};
    for (size_t i = 0; i < sizeof(idle) / sizeof(idle[0]); i++)
        if (idle[i] == nr) return 1;
    return 0;
}

/* Waits for a ptrace stop of tid, up to timeout seconds (0: for ever).
 * Returns 0 with the wait status, -ESRCH when it exited, -ETIMEDOUT. */
static int wait_stop(pid_t tid, int *status, double timeout)
{
    double until = timeout > 0 ? mc_now() + timeout : 0;
    for (;;) {
        pid_t r = waitpid(tid, status, WNOHANG | __WALL);
        if (r == tid) {
            if (WIFEXITED(*status) || WIFSIGNALED(*status)) return -ESRCH;
            if (WIFSTOPPED(*status)) return 0;
        } else if (r < 0 && errno != EINTR) {
            return -ESRCH;
        }
        if (until && mc_now() >= until) return -ETIMEDOUT;
        mc_sleep(0.001);
    }
}

/* The address ranges of the C library, the loader, and (attached before)
 * memcreep's library and libunwind in the process: a thread running there
 * may hold their locks (the allocator's, the loader's, a shard of the
 * pointer table), which the calls it would be borrowed for need. */
struct ranges {
    uint64_t lo[128], hi[128];
    int n;
};

static void libc_ranges(pid_t pid, struct ranges *r)
{
    char mp[64], line[PATH_MAX + 128];
    snprintf(mp, sizeof(mp), "/proc/%d/maps", (int)pid);
    r->n = 0;
    FILE *f = fopen(mp, "re");
    if (!f) return;
    while (r->n < 128 && fgets(line, sizeof(line), f)) {
        unsigned long long lo, hi;
        if (sscanf(line, "%llx-%llx", &lo, &hi) != 2) continue;
        if (!strstr(line, "/libc.so.6") && !strstr(line, "/ld-linux") &&
            !strstr(line, "/libmemcreep") && !strstr(line, "/libunwind"))
            continue;
        r->lo[r->n] = lo;
        r->hi[r->n++] = hi;
    }
    fclose(f);
}

static void release(struct borrowed *b)
{
    ptrace(PTRACE_DETACH, b->tid, NULL, NULL);
}

/* Takes thread tid if it is in a safe state. Returns 1 taken, 0 not safe
 * now (let go again), -ESRCH gone, -errno when ptrace refuses. */
static int try_borrow(struct borrowed *b, pid_t tid, const struct ranges *libc)
{
    if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) != 0) return -errno;
    b->tid = tid;
    int st;
    if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) != 0 || wait_stop(tid, &st, 2) != 0) {
        release(b);
        return -ESRCH;
    }
    /* A signal that was on its way arrived first: let it through, and
     * take the stop that follows. */
    for (int i = 0; i < 16 && (st >> 16) != PTRACE_EVENT_STOP; i++) {
        int sig = WSTOPSIG(st);
        ptrace(PTRACE_CONT, tid, NULL, (void *)(long)sig);
        ptrace(PTRACE_INTERRUPT, tid, NULL, NULL);
        if (wait_stop(tid, &st, 2) != 0) {
            release(b);
            return -ESRCH;
        }
    }
    if ((st >> 16) != PTRACE_EVENT_STOP || ptrace(PTRACE_GETREGS, tid, NULL, &b->regs) != 0) {
        release(b);
        return 0;
    }
    long nr = (long)b->regs.orig_rax;
    int safe = nr >= 0 ? idle_syscall(nr) : 1;
    for (int i = 0; nr < 0 && i < libc->n; i++)
        if (b->regs.rip >= libc->lo[i] && b->regs.rip < libc->hi[i]) safe = 0;
    if (!safe) {
        release(b);
        return 0;
    }
    b->xiov.iov_base = b->xstate;
    b->xiov.iov_len = sizeof(b->xstate);
    b->have_xstate = ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &b->xiov) == 0;
    if (!b->have_xstate) {
        /* Without XSAVE: the legacy FXSAVE area (x87 and SSE). */
        b->xiov.iov_len = sizeof(struct user_fpregs_struct);
        b->have_xstate = ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRFPREG, &b->xiov) == 0 ? 2 : 0;
    }
    return 1;
}

/* The process' threads, the ones blocked in a waiting system call first
 * (they are the safest to borrow), the main thread first among equals. */
static int list_threads(pid_t pid, pid_t *out, int max)
{
    char dir[64], path[128], buf[256];
    snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    if (!d) return 0;
    pid_t idle[256], other[256];
    int ni = 0, no = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        pid_t tid = (pid_t)atoi(de->d_name);
        if (tid <= 0) continue;
        /* Not a thread of memcreep's own library (attached before). */
        snprintf(path, sizeof(path), "%s/%d/comm", dir, (int)tid);
        if (read_small(path, buf, sizeof(buf)) > 0 && !strcmp(buf, "memcreep\n")) continue;
        snprintf(path, sizeof(path), "%s/%d/syscall", dir, (int)tid);
        long nr = read_small(path, buf, sizeof(buf)) > 0 && buf[0] != 'r' ? atol(buf) : -1;
        if (idle_syscall(nr) && ni < 256) {
            if (tid == pid && ni) {
                idle[ni++] = idle[0];
                idle[0] = tid;
            } else {
                idle[ni++] = tid;
            }
        } else if (no < 256) {
            other[no++] = tid;
        }
    }
    closedir(d);
    int n = 0;
    for (int i = 0; i < ni && n < max; i++)
        out[n++] = idle[i];
    for (int i = 0; i < no && n < max; i++)
        out[n++] = other[i];
    return n;
}

/* Borrows a thread in a safe state, trying for up to 5 s. */
static enum mc_inject_err borrow(pid_t pid, struct borrowed *b, char *msg, size_t len)
{
    struct ranges libc;
    libc_ranges(pid, &libc);
    double until = mc_now() + 5;
    b->pid = pid;
    do {
        pid_t tids[512];
        int n = list_threads(pid, tids, 512);
        if (n == 0) {
            snprintf(msg, len, "PID %d is gone", (int)pid);
            return MC_INJECT_GONE;
        }
        for (int i = 0; i < n; i++) {
            int r = try_borrow(b, tids[i], &libc);
            if (r == 1) return MC_INJECT_OK;
            if (r == -EPERM || r == -EACCES) return why_not(pid, -r, msg, len);
        }
        mc_sleep(0.01);
    } while (mc_now() < until);
    snprintf(msg, len, "no thread of PID %d was waiting or outside the C library within 5 s",
             (int)pid);
    return MC_INJECT_NO_THREAD;
}

/* Puts the borrowed thread back as it was and lets it go. */
static void give_back(struct borrowed *b)
{
    ptrace(PTRACE_SETREGS, b->tid, NULL, &b->regs);
    if (b->have_xstate)
        ptrace(PTRACE_SETREGSET, b->tid,
               (void *)(long)(b->have_xstate == 2 ? NT_PRFPREG : NT_X86_XSTATE), &b->xiov);
    release(b);
}

static int mem_io(pid_t pid, uint64_t addr, void *buf, size_t n, int write)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
    int fd = open(path, (write ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t r = write ? pwrite(fd, buf, n, (off_t)addr) : pread(fd, buf, n, (off_t)addr);
    int e = errno;
    close(fd);
    return r == (ssize_t)n ? 0 : -(r < 0 ? e : EIO);
}

/* Calls fn(a0, a1) in the borrowed thread, with data copied below its
 * stack (*data_at: where; a0 and a1 may point into it). Returns 0 with
 * rax in *ret, or -errno (-ESRCH: the process ended). */
static int remote_call(struct borrowed *b, uint64_t fn, const void *data, size_t dlen,
                       uint64_t *data_at, uint64_t a0, uint64_t a1, int a_in_data, uint64_t *ret)
{
    struct user_regs_struct r = b->regs;
    uint64_t at = ((b->regs.rsp - 256 - dlen) & ~(uint64_t)15);
    if (dlen && mem_io(b->pid, at, (void *)data, dlen, 1) != 0) return -EFAULT;
    if (data_at) *data_at = at;
    uint64_t sp = at - 64 - 8, zero = 0;
    if (mem_io(b->pid, sp, &zero, sizeof(zero), 1) != 0) return -EFAULT;
    r.rsp = sp;
    r.rip = fn;
    r.rdi = a_in_data & 1 ? at + a0 : a0;
    r.rsi = a_in_data & 2 ? at + a1 : a1;
    r.rax = 0;
    r.orig_rax = (unsigned long long)-1;
    if (ptrace(PTRACE_SETREGS, b->tid, NULL, &r) != 0) return -errno;
    if (ptrace(PTRACE_CONT, b->tid, NULL, NULL) != 0) return -errno;
    int warned = 0;
    double t0 = mc_now();
    for (;;) {
        int st, w = wait_stop(b->tid, &st, 1);
        if (w == -ESRCH) return -ESRCH;
        if (w == -ETIMEDOUT) {
            /* It cannot be abandoned half-way: the return to 0 would kill
             * the program. Say why it takes long and keep waiting. */
            if (!warned && mc_now() - t0 > 10) {
                fprintf(stderr,
                        "memcreep: still waiting for the call in thread %d of PID %d "
                        "(another thread holds the loader's lock?)\n",
                        (int)b->tid, (int)b->pid);
                warned = 1;
            }
            continue;
        }
        struct user_regs_struct now;
        if (ptrace(PTRACE_GETREGS, b->tid, NULL, &now) != 0) return -errno;
        int sig = (st >> 16) ? 0 : WSTOPSIG(st);
        if (sig == SIGSEGV && now.rip == 0) {
            *ret = now.rax;
            return 0;
        }
        /* The program's own signal while the call runs: delivered, as it
         * would be during any call the program makes. */
        ptrace(PTRACE_CONT, b->tid, NULL, (void *)(long)sig);
    }
}

enum mc_inject_err mc_inject(pid_t pid, const char *lib, const char *conf, int *ret, double *paused,
                             char *msg, size_t len)
{
    *paused = 0;
    char libc[PATH_MAX];
    uint64_t libc_at, v_dlopen, v_dlerror, v_start, load0, lib_load0;
    if (find_mapping(pid, "/libc.so.6", &libc_at, libc, sizeof(libc)) != 0 ||
        elf_symbol(pid, libc, "dlopen", &v_dlopen, &load0) != 0 ||
        elf_symbol(pid, libc, "dlerror", &v_dlerror, &load0) != 0) {
        snprintf(msg, len, "no dlopen in the C library of PID %d (glibc 2.34 or later needed)",
                 (int)pid);
        return MC_INJECT_NOT_GLIBC;
    }
    if (elf_symbol(getpid(), lib, "mc_attach_start", &v_start, &lib_load0) != 0) {
        snprintf(msg, len, "%s has no mc_attach_start: not this memcreep's library?", lib);
        return MC_INJECT_FAILED;
    }
    uint64_t bias = libc_at - load0;
    struct borrowed *b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(msg, len, "out of memory");
        return MC_INJECT_FAILED;
    }
    enum mc_inject_err e = borrow(pid, b, msg, len);
    if (e != MC_INJECT_OK) {
        free(b);
        return e;
    }
    double t_borrowed = mc_now();
    uint64_t handle = 0, rv = 0;
    size_t ll = strlen(lib) + 1, cl = strlen(conf) + 1;
    char *data = malloc(ll + cl);
    int rc = -ENOMEM;
    if (data) {
        memcpy(data, lib, ll);
        memcpy(data + ll, conf, cl);
        /* RTLD_NOW: every symbol bound now, in the borrowed thread, not
         * later in a hook; RTLD_LOCAL: nothing of it interposes. */
        rc = remote_call(b, bias + v_dlopen, data, ll, NULL, 0, 2 /* RTLD_NOW */, 1, &handle);
    }
    if (rc == 0 && !handle) {
        /* Why, from the target's own dlerror(). */
        uint64_t s = 0;
        char why[256] = "";
        if (remote_call(b, bias + v_dlerror, NULL, 0, NULL, 0, 0, 0, &s) == 0 && s &&
            mem_io(pid, s, why, sizeof(why) - 1, 0) != 0) {
            for (size_t i = 0; i < sizeof(why) - 1; i++) /* may end on an unmapped page */
                if (mem_io(pid, s + i, why + i, 1, 0) != 0 || !why[i]) break;
        }
        why[sizeof(why) - 1] = 0;
        snprintf(msg, len, "dlopen in PID %d failed: %s", (int)pid, why[0] ? why : "no reason");
        e = MC_INJECT_FAILED;
    } else if (rc == 0) {
        uint64_t l_addr = 0;
        if (mem_io(pid, handle, &l_addr, sizeof(l_addr), 0) != 0) {
            snprintf(msg, len, "cannot read the library's load address in PID %d", (int)pid);
            e = MC_INJECT_FAILED;
        } else {
            rc = remote_call(b, l_addr + v_start, data + ll, cl, NULL, 0, 0, 1, &rv);
            *ret = (int)(uint32_t)rv;
        }
    }
    if (rc == -ESRCH) {
        snprintf(msg, len, "PID %d ended while the library was being loaded", (int)pid);
        e = MC_INJECT_GONE;
    } else if (rc != 0 && e == MC_INJECT_OK) {
        snprintf(msg, len, "cannot make a call in PID %d: %s", (int)pid, strerror(-rc));
        e = MC_INJECT_FAILED;
    }
    if (rc != -ESRCH) give_back(b);
    *paused = mc_now() - t_borrowed;
    free(data);
    free(b);
    return e;
}
