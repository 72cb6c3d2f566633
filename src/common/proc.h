/* proc.h - what /proc says about a process: memory, liveness, children.
 * Works for any process, preloaded or not. */
#ifndef MC_PROC_H
#define MC_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Resident set size in bytes; -1 when the process is gone. */
int64_t mc_proc_rss(pid_t pid);
/* The soft RLIMIT_NOFILE of a process (/proc/PID/limits), -1 when unknown
 * or unlimited. */
int64_t mc_proc_fd_limit(pid_t pid);
/* 1 when the pid exists and is not a zombie, 0 otherwise. */
int mc_proc_alive(pid_t pid);
/* 1 when the process is gone or on its way out (PF_EXITING): what it holds
 * is being torn down and must not be read as its state. */
int mc_proc_exiting(pid_t pid);
/* Parent pid from /proc/PID/stat, -1 when gone. */
pid_t mc_proc_ppid(pid_t pid);
/* Fills out with up to max pids of root's descendants (not root itself).
 * Returns how many were found (may exceed max: only max are stored). */
int mc_proc_descendants(pid_t root, pid_t *out, int max);
/* Copies the short command name (comm) into buf; "" when gone. */
void mc_proc_comm(pid_t pid, char *buf, size_t len);

/* What a process holds besides memory, from /proc: descriptors, sockets
 * and their TCP states, threads. */
#define MC_PEERS 3

struct mc_proc_res {
    int fds;            /* open descriptors */
    int sockets;        /* of which sockets (any family) */
    int tcp_est;        /* TCP sockets ESTABLISHED */
    int tcp_close_wait; /* TCP sockets in CLOSE_WAIT: the peer closed, we did not */
    int tcp_listen;
    int tcp_other;
    int time_wait; /* TIME_WAIT sockets (owned by no process) on this
                      process's listening ports or towards its peers */
    int threads;
    /* The peers holding most of its TCP sockets (not listening), by
     * address, port (or "*" for clients' ephemeral ports) and state. */
    struct mc_peer {
        char addr[64];
        char state[12];
        int count;
    } peers[MC_PEERS];
    int npeers;
};

struct mc_tcp_table;

/* Fills *r for pid, its sockets from tab (tcp_table.h: one reading of the
 * machine's TCP table per sample, shared by every process). Returns 0, or
 * -1 when the process is gone or not readable. */
int mc_proc_resources(pid_t pid, struct mc_proc_res *r, struct mc_tcp_table *tab);

#endif
