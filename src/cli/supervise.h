/* supervise.h - starting, watching and stopping the target process. */
#ifndef MC_SUPERVISE_H
#define MC_SUPERVISE_H

#include <stddef.h>
#include <sys/types.h>

/* Records the signal dispositions and mask memcreep was started with, so
 * that the target gets the same ones. Called first thing in main. */
void mc_signals_inherit(void);
/* 1 when sig was ignored when memcreep started (nohup, a background job):
 * memcreep then leaves it ignored for itself too. */
int mc_signal_inherited_ignored(int sig);
/* Finds the file execvp would run for name. Returns 0 with the path in out,
 * -ENOENT, -EACCES (exists, not executable) or -EISDIR. */
int mc_resolve_exe(const char *name, char *out, size_t len);
/* 1 when path is an ELF file without an interpreter (static: LD_PRELOAD
 * cannot work), 0 otherwise (dynamic ELF, script, unreadable). */
int mc_exe_is_static(const char *path);
/* Starts argv in a new process group with the given extra environment
 * ("NAME=value" strings, NULL-terminated); it gets SIGTERM if the calling
 * thread dies first. Returns 0 and the pid, or -errno when the exec failed
 * (reported back through a CLOEXEC pipe). */
int mc_spawn(char *const argv[], char *const extra_env[], pid_t *pid);
/* Stops the child's process group: SIGTERM, up to grace seconds, SIGKILL.
 * Reaps the child; fills how it ended. */
void mc_child_stop(pid_t pid, double grace, int *signaled, int *status, int *sig);
/* Sends SIGTERM, then SIGKILL after grace, to what is left of the group
 * after the child itself ended. */
void mc_group_cleanup(pid_t pgid, double grace);

/* A watchdog process for when memcreep is killed outright (SIGKILL, the
 * OOM killer): it stops the target's whole process group (SIGTERM, grace
 * seconds, SIGKILL) and removes the run directory. */
struct mc_watchdog {
    pid_t pid; /* 0: none */
    int fd;    /* memcreep's end of the pipe the watchdog waits on */
};
/* Starts it for the group pgid (0: none, the directory only: memcreep
 * attach, whose target is not memcreep's to stop) and the run directory
 * dir. Returns 0 or -errno (the run goes on without one). */
int mc_watchdog_start(struct mc_watchdog *w, pid_t pgid, const char *dir, double grace);
/* The run ended normally: the watchdog leaves without doing anything. */
void mc_watchdog_done(struct mc_watchdog *w);

#endif
