/* fd_error_path.c - descriptor leak on an error path: each request opens
 * its file; one in four fails validation and returns without closing. */
#include <fcntl.h>
#include <stdio.h>

#include "fixture.h"

__attribute__((noinline)) static int load_config(int i)
{
    int fd = open("/proc/self/stat", O_RDONLY);
    if (fd < 0) return -1;
    char buf[256];
    ssize_t got = read(fd, buf, sizeof(buf));
    if (got <= 0 || i % 4 == 0) return -1; /* "invalid": the descriptor is left open */
    close(fd);
    return 0;
}

static void handle(int i)
{
    load_config(i);
}

int main(int argc, char **argv)
{
    fixture_loop(argc, argv, 3000, handle);
    return 0;
}
