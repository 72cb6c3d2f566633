/* string_leak.c - leak: a log of request paths, each strdup'ed into an
 * array that realloc doubles: two stacks grow (the copies, the array). */
#include <stdio.h>
#include <string.h>

#include "fixture.h"

static char **paths;
static size_t n, cap;

__attribute__((noinline)) static void log_path(int i)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "/api/v1/orders/%d/items", i);
    if (n == cap) {
        cap = cap ? 2 * cap : 64;
        paths = realloc(paths, cap * sizeof(*paths));
    }
    paths[n++] = strdup(buf);
}

int main(int argc, char **argv)
{
    fixture_loop(argc, argv, 5000, log_path);
    return 0;
}
