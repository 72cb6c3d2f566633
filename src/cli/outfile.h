/* outfile.h - writing the files of --output safely (see outfile.c). */
#ifndef MC_OUTFILE_H
#define MC_OUTFILE_H

#include <stdio.h>

/* Writes a file's content to f. Returns 0 or -errno. */
typedef int (*mc_out_put)(FILE *f, void *arg);

/* Checks that memcreep may write in dir: a directory, writable, owned by
 * the effective user unless any_owner.
 * Returns 0, or -errno (-ENOTDIR, -EPERM for another owner's). */
int mc_out_dir_check(const char *dir, int any_owner);
/* Writes dir/name with put through a temporary file renamed over it.
 * Returns 0, or -errno of what failed (a full disk: -ENOSPC); then
 * neither the temporary file nor an older dir/name is left. */
int mc_out_write(const char *dir, const char *name, mc_out_put put, void *arg);

#endif
