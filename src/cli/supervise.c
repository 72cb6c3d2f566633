/* supervise.c - process supervision for `memcreep run`. The target runs in
 * a process group of its own so that stopping it reaches its workers too. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/supervise.h"
#include "common/util.h"

/* What memcreep itself inherited: the signals it was started with ignored
 * (nohup, a background job of a shell) and its signal mask. The target
 * gets exactly these, whatever memcreep does with its own dispositions. */
static sigset_t inherited_ignored, inherited_mask;
static int inherited_saved;

void mc_signals_inherit(void)
{
    sigemptyset(&inherited_ignored);
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction old;
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        if (sigaction(sig, NULL, &old) == 0 && old.sa_handler == SIG_IGN)
            sigaddset(&inherited_ignored, sig);
    }
    sigprocmask(SIG_SETMASK, NULL, &inherited_mask);
    inherited_saved = 1;
}

int mc_signal_inherited_ignored(int sig)
{
    return inherited_saved && sigismember(&inherited_ignored, sig) == 1;
}

/* In the child before exec: every disposition memcreep may have changed
 * goes back to what memcreep inherited (handlers would become SIG_DFL at
 * exec anyway; an ignore inherited must stay an ignore). */
static void restore_inherited_signals(void)
{
    static const int changed[] = {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD};
    for (size_t i = 0; i < sizeof(changed) / sizeof(changed[0]); i++)
        signal(changed[i], mc_signal_inherited_ignored(changed[i]) ? SIG_IGN : SIG_DFL);
    if (inherited_saved) {
        sigprocmask(SIG_SETMASK, &inherited_mask, NULL);
    } else {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
    }
}

static int check_file(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return -errno;
    if (S_ISDIR(sb.st_mode)) return -EISDIR;
    if (access(path, X_OK) != 0) return -EACCES;
    return 0;
}

int mc_resolve_exe(const char *name, char *out, size_t len)
{
    if (!name || !*name) return -ENOENT;
    if (strchr(name, '/')) {
        snprintf(out, len, "%s", name);
        return check_file(name);
    }
    const char *path = getenv("PATH");
    if (!path) path = "/usr/local/bin:/usr/bin:/bin";
    int best = -ENOENT;
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t l = colon ? (size_t)(colon - path) : strlen(path);
        snprintf(out, len, "%.*s/%s", (int)l, l ? path : ".", name);
        int rc = check_file(out);
        if (rc == 0) return 0;
        if (rc == -EACCES) best = rc;
        path += l + (colon ? 1 : 0);
    }
    return best;
}

int mc_exe_is_static(const char *path)
{
    Elf64_Ehdr eh;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int is_static = 0;
    if (fd < 0) return 0;
    if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_phentsize != sizeof(Elf64_Phdr))
        goto out;
    is_static = 1;
    for (int i = 0; i < eh.e_phnum && i < 256; i++) {
        Elf64_Phdr ph;
        off_t off = (off_t)(eh.e_phoff + (uint64_t)i * sizeof(ph));
        if (pread(fd, &ph, sizeof(ph), off) != (ssize_t)sizeof(ph)) break;
        if (ph.p_type == PT_INTERP) {
            is_static = 0;
            break;
        }
    }
out:
    close(fd);
    return is_static;
}

int mc_spawn(char *const argv[], char *const extra_env[], pid_t *pid)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) return -errno;
    pid_t parent = getpid();
    pid_t p = fork();
    if (p < 0) {
        int e = errno;
        close(pfd[0]);
        close(pfd[1]);
        return -e;
    }
    if (p == 0) {
        close(pfd[0]);
        setpgid(0, 0);
        /* Dispositions memcreep changed must not leak into the target:
         * ignored signals stay ignored across exec, so it gets the ones
         * memcreep was given. */
        restore_inherited_signals();
        /* Should memcreep be killed outright (SIGKILL, the OOM killer, a CI
         * job's time limit), nobody is left to stop the target: it gets
         * SIGTERM then, as it would from memcreep, rather than running on
         * unsupervised and holding its port. The setting survives exec but
         * not the target's own forks; a parent already gone is checked. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) raise(SIGTERM);
        for (int i = 0; extra_env && extra_env[i]; i++)
            putenv(extra_env[i]);
        execvp(argv[0], argv);
        int e = errno;
        ssize_t w = write(pfd[1], &e, sizeof(e));
        (void)w;
        _exit(127);
    }
    close(pfd[1]);
    setpgid(p, p); /* both sides, so it holds whoever runs first */
    int e = 0;
    ssize_t r;
    do
        r = read(pfd[0], &e, sizeof(e));
    while (r < 0 && errno == EINTR);
    close(pfd[0]);
    if (r == (ssize_t)sizeof(e)) {
        waitpid(p, NULL, 0);
        return -e;
    }
    *pid = p;
    return 0;
}

static void decode(int st, int *signaled, int *status, int *sig)
{
    *signaled = WIFSIGNALED(st);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    *sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

void mc_child_stop(pid_t pid, double grace, int *signaled, int *status, int *sig)
{
    int st;
    kill(-pid, SIGTERM);
    kill(pid, SIGTERM);
    double until = mc_now() + grace;
    while (mc_now() < until) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            decode(st, signaled, status, sig);
            return;
        }
        if (r < 0 && errno != EINTR) break;
        mc_sleep(0.02);
    }
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            *signaled = 1;
            *sig = SIGKILL;
            *status = -1;
            return;
        }
    decode(st, signaled, status, sig);
}

/* Removes the files of dir and dir itself with system calls only (the
 * watchdog is a fork of a process that may have other threads). */
static void remove_dir_raw(const char *dir)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        char buf[4096];
        long n;
        while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
            for (long off = 0; off < n;) {
                struct dirent64 *de = (struct dirent64 *)(buf + off);
                if (de->d_name[0] != '.') syscall(SYS_unlinkat, fd, de->d_name, 0);
                off += de->d_reclen;
            }
            syscall(SYS_lseek, fd, 0, SEEK_SET); /* names shifted: read again */
            if (n < (long)sizeof(buf) / 2) break;
        }
        syscall(SYS_close, fd);
    }
    syscall(SYS_unlinkat, AT_FDCWD, dir, AT_REMOVEDIR);
}

int mc_watchdog_start(struct mc_watchdog *w, pid_t pgid, const char *dir, double grace)
{
    int p[2];
    w->pid = 0;
    w->fd = -1;
    if (pipe2(p, O_CLOEXEC) != 0) return -errno;
    pid_t k = fork();
    if (k < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        return -e;
    }
    if (k == 0) {
        /* Only system calls from here: a fork of a threaded process. */
        signal(SIGINT, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        signal(SIGPIPE, SIG_IGN);
        setpgid(0, 0); /* a Ctrl-C of memcreep's terminal is not for it */
        dup2(p[0], 3);
        syscall(SYS_close_range, 4, ~0u, 0);
        char c;
        ssize_t r;
        do
            r = read(3, &c, 1);
        while (r < 0 && errno == EINTR);
        if (r == 1) _exit(0); /* memcreep ended the run itself */
        if (pgid > 0 && kill(-pgid, SIGTERM) == 0) {
            struct timespec step = {0, 50000000};
            for (double t = 0; t < grace && kill(-pgid, 0) == 0; t += 0.05)
                nanosleep(&step, NULL);
            kill(-pgid, SIGKILL);
        }
        remove_dir_raw(dir);
        _exit(0);
    }
    close(p[0]);
    w->pid = k;
    w->fd = p[1];
    return 0;
}

void mc_watchdog_done(struct mc_watchdog *w)
{
    if (w->pid <= 0) return;
    char c = 'x';
    ssize_t r = write(w->fd, &c, 1);
    (void)r;
    close(w->fd);
    while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    w->pid = 0;
    w->fd = -1;
}

void mc_group_cleanup(pid_t pgid, double grace)
{
    if (kill(-pgid, 0) != 0) return; /* nothing left */
    kill(-pgid, SIGTERM);
    double until = mc_now() + grace;
    while (mc_now() < until && kill(-pgid, 0) == 0)
        mc_sleep(0.05);
    kill(-pgid, SIGKILL);
}
