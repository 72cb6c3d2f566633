/* warmup.c - control: the first 800 requests warm a route cache (one
 * 1-KiB entry per route, 800 routes), after which every route is known and
 * nothing more is kept. */
#include <string.h>

#include "fixture.h"

#define ROUTES 800

static void *routes[ROUTES];

__attribute__((noinline)) static void route(int i)
{
    int r = i < ROUTES ? i : (i * 7919) % ROUTES;
    if (!routes[r]) {
        routes[r] = malloc(1024);
        memset(routes[r], r, 1024);
    }
    char *req = malloc(300);
    memset(req, i, 300);
    free(req);
}

int main(int argc, char **argv)
{
    fixture_loop(argc, argv, 5000, route);
    return 0;
}
