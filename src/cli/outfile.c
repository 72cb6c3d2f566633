/* outfile.c - output files written safely: into a new temporary file of
 * the output directory (O_EXCL | O_NOFOLLOW: never through a link someone
 * planted), checked to the last byte, then renamed over the final name
 * (which replaces a planted link instead of following it). A write that
 * fails leaves neither the half-written file nor an older file of that
 * name that would pass for this run's. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cli/outfile.h"

int mc_out_dir_check(const char *dir, int any_owner)
{
    struct stat sb;
    if (stat(dir, &sb) != 0) return -errno;
    if (!S_ISDIR(sb.st_mode)) return -ENOTDIR;
    /* A directory of someone else's (a /tmp name another user made first)
     * is refused: its owner could swap what memcreep writes there. */
    if (!any_owner && sb.st_uid != geteuid()) return -EPERM;
    if (access(dir, W_OK | X_OK) != 0) return -errno;
    return 0;
}

int mc_out_write(const char *dir, const char *name, mc_out_put put, void *arg)
{
    char tmp[4096], final[4096];
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return -errno;
    snprintf(final, sizeof(final), "%s", name);
    int fd = -1, rc = 0;
    for (int i = 0; i < 100 && fd < 0; i++) {
        snprintf(tmp, sizeof(tmp), ".%s.%d.%d.tmp", name, (int)getpid(), i);
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        rc = -errno;
        goto fail;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        rc = -errno;
        close(fd);
        goto fail_tmp;
    }
    errno = 0;
    int r = put(f, arg);
    /* The last bytes leave the buffer only now: their failure counts, and
     * its errno says more than a renderer's EIO. */
    if (fflush(f) != 0 && (!r || r == -EIO)) r = -(errno ? errno : EIO);
    if (ferror(f) && !r) r = -EIO;
    if (r == -EIO) { /* a write failed earlier: say ENOSPC when that is why */
        struct statvfs vfs;
        if (fstatvfs(fd, &vfs) == 0 && vfs.f_bavail == 0) r = -ENOSPC;
    }
    if (fclose(f) != 0 && !r) r = -(errno ? errno : EIO);
    if (r) {
        rc = r;
        goto fail_tmp;
    }
    if (renameat(dfd, tmp, dfd, final) != 0) {
        rc = -errno;
        goto fail_tmp;
    }
    close(dfd);
    return 0;
fail_tmp:
    unlinkat(dfd, tmp, 0);
fail:
    /* What is there under the final name is from an earlier run. */
    unlinkat(dfd, final, 0);
    close(dfd);
    return rc;
}
