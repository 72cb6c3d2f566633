/* tcp_table.h - the machine's TCP table, read once per sample for every
 * process that memcreep watches (tcp_table.c). */
#ifndef MC_TCP_TABLE_H
#define MC_TCP_TABLE_H

#include <sys/types.h>

/* One TCP socket of the machine: the state, the inode that ties it to a
 * process (0 for TIME_WAIT, which no process owns), its ports and its
 * peer as a key (address and port hashed). */
struct mc_tcp_entry {
    unsigned long inode;
    int state;
    unsigned long lport, rport;
    unsigned long peer;
    int family; /* AF_INET or AF_INET6 */
    unsigned char raddr[16];
};

/* A port whose TIME_WAITs a process wants counted: one it listens on
 * (the local port of a TIME_WAIT) or a peer's (the remote port). */
struct mc_tcp_port {
    unsigned short port;
    unsigned char remote;
};

#define MC_TCP_TW       6  /* TCP_TIME_WAIT in the kernel's state numbers */
#define MC_TCP_TW_PORTS 24 /* ports whose TIME_WAITs one kernel filter selects */

struct mc_tcp_table;

/* A new, empty table (stale: read at first use), or NULL without memory.
 * The caller frees it with mc_tcp_table_free. */
struct mc_tcp_table *mc_tcp_table_new(void);
void mc_tcp_table_free(struct mc_tcp_table *t);

/* Marks the table stale: the next mc_tcp_table_get reads the kernel's
 * table again. Called once per sample. */
void mc_tcp_table_expire(struct mc_tcp_table *t);

/* The sockets of the table (read now when stale) for a process: the
 * entries whose inode is in inodes (sorted, ni of them) are copied to own
 * (room for max), and the TIME_WAITs on the ports of want are made part
 * of the table (read now when they were not asked for at the previous
 * sample). pid is the process whose /proc/PID/net/tcp is read when
 * netlink is refused. Returns how many entries were copied. */
int mc_tcp_table_get(struct mc_tcp_table *t, pid_t pid, const unsigned long *inodes, int ni,
                     struct mc_tcp_entry *own, int max);
void mc_tcp_table_want(struct mc_tcp_table *t, const struct mc_tcp_port *want, int n);

/* The TIME_WAITs now in the table: their local ports and peer keys (n of
 * each, valid until the next mc_tcp_table_get or _want). */
int mc_tcp_table_tw(const struct mc_tcp_table *t, const unsigned long **port,
                    const unsigned long **peer);

/* FNV-1a over n bytes from h (FNV_SEED to start): the peer keys. */
unsigned long mc_tcp_hash(const void *p, size_t n, unsigned long long h);
#define MC_FNV_SEED 1469598103934665603ull

#endif
