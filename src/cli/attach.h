/* attach.h - the steps memcreep attach adds to a session: the library put
 * into every process of the tree (cli/inject.c), and taken out of them all
 * at the end. */
#ifndef MC_ATTACH_H
#define MC_ATTACH_H

#include <sys/types.h>

#include "analysis/collector.h"
#include "cli/session.h"

enum {
    MC_ATTACH_TREE_GONE = -2,    /* the process is gone: nothing to watch */
    MC_ATTACH_TREE_REFUSED = -1, /* refused (said on stderr): outside view only */
};

/* Loads lib into pid and its descendants, each told to publish into dir.
 * A refusal is one line on stderr. Returns how many processes were
 * attached (>= 0; the root's refusal gives MC_ATTACH_TREE_REFUSED even if
 * a child was), or an MC_ATTACH_TREE_* value; *paused_max gets the
 * longest time a borrowed thread was stopped, seconds. */
int mc_attach_tree(const struct mc_session_opts *o, pid_t pid, const char *lib, const char *dir,
                   double *paused_max);

/* Takes samples until every attached Python process served its first
 * snapshot (its bridge has put its collector callback and allocator
 * wrappers in: what follows is measured with them), at most timeout
 * seconds. */
void mc_attach_settle(struct mc_collector *c, double timeout);

/* Asks every attached process the collector knows to take its hooks out,
 * and waits until they have, at most timeout seconds; one line on stderr
 * for each that did not (its library detaches by itself once memcreep has
 * ended). */
void mc_attach_detach_all(struct mc_collector *c, double timeout);

#endif
