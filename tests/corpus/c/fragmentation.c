/* fragmentation.c - control: blocks of many sizes, most freed soon, a
 * bounded number kept for a while (a ring of 2000): the live heap is flat
 * while free holes of every size come and go. */
#include <string.h>

#include "fixture.h"

#define RING 2000

static void *ring[RING];

__attribute__((noinline)) static void store(int i)
{
    for (int k = 0; k < 4; k++) {
        size_t sz = 16 + (size_t)((i * 131 + k * 977) % 4000);
        char *tmp = malloc(sz);
        memset(tmp, k, sz);
        if (k == 3) {
            free(ring[i % RING]);
            ring[i % RING] = tmp;
        } else {
            free(tmp);
        }
    }
}

int main(int argc, char **argv)
{
    fixture_loop(argc, argv, 6000, store);
    return 0;
}
