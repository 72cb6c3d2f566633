/* object_pool.c - control: connections' buffers come from a pool that
 * grows to the peak concurrency (64) in the first requests and is reused
 * from then on. */
#include <string.h>

#include "fixture.h"

#define PEAK 64

static void *free_list[PEAK];
static int nfree, made;

__attribute__((noinline)) static void *pool_get(void)
{
    if (nfree) return free_list[--nfree];
    made++;
    return malloc(8192);
}

static void pool_put(void *b)
{
    free_list[nfree++] = b;
}

static void handle(int i)
{
    void *held[PEAK];
    int k = 1 + (i * 37) % PEAK;
    for (int j = 0; j < k; j++) {
        held[j] = pool_get();
        memset(held[j], j, 64);
    }
    for (int j = 0; j < k; j++)
        pool_put(held[j]);
}

int main(int argc, char **argv)
{
    fixture_loop(argc, argv, 5000, handle);
    return made > PEAK;
}
