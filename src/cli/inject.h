/* inject.h - loading libmemcreep.so into a process that is already running
 * (memcreep attach): ptrace one of its threads, make it call dlopen and
 * the library's mc_attach_start, give it back as it was. */
#ifndef MC_INJECT_H
#define MC_INJECT_H

#include <stddef.h>
#include <sys/types.h>

/* Why an attach was refused: X(name, what the user reads). Every one is
 * exit status 3 (docs/attach.md); the outside view goes on where /proc
 * still shows the process. */
#define MC_INJECT_ERRORS(X)                                                                        \
    X(GONE, "no such process")                                                                     \
    X(PERM, "not permitted to trace it")                                                           \
    X(TRACED, "it is being traced already")                                                        \
    X(STOPPED, "it is stopped")                                                                    \
    X(STATIC, "it is statically linked")                                                           \
    X(NOT_GLIBC, "it does not run on glibc")                                                       \
    X(MOUNT_NS, "the library is not visible in its mount namespace")                               \
    X(LOADED, "memcreep's library is in it already")                                               \
    X(NO_THREAD, "no thread of it could be borrowed safely")                                       \
    X(FAILED, "loading the library failed")

enum mc_inject_err {
    MC_INJECT_OK = 0,
#define X(name, text) MC_INJECT_##name,
    MC_INJECT_ERRORS(X)
#undef X
};

/* The short text of an error, for the one line memcreep prints. */
const char *mc_inject_strerror(enum mc_inject_err e);

/* Checks, without touching the process, that it can be attached to with
 * the library at lib and the run directory dir (both must be the same
 * files in its mount namespace). Returns MC_INJECT_OK or an error, with
 * the reason in full in msg. */
enum mc_inject_err mc_inject_check(pid_t pid, const char *lib, const char *dir, char *msg,
                                   size_t len);

/* Loads lib into pid and calls its mc_attach_start(conf) there. *ret gets
 * what that returned (GOT entries routed, or -errno), *paused how long the
 * borrowed thread was stopped, seconds. Every thread of the process keeps
 * running but the one borrowed, which is back where it was, registers and
 * all, when this returns. Returns MC_INJECT_OK or an error with msg. */
enum mc_inject_err mc_inject(pid_t pid, const char *lib, const char *conf, int *ret, double *paused,
                             char *msg, size_t len);

#endif
