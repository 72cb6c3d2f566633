/* batch_sawtooth.c - control: requests are queued in batches of 250 and
 * the whole batch freed when it is flushed: a sawtooth that always comes
 * back to nothing. */
#include <string.h>

#include "fixture.h"

#define BATCH 250

static void *queued[BATCH];
static int nq;

__attribute__((noinline)) static void enqueue(int i)
{
    queued[nq] = malloc(2048);
    memset(queued[nq], i, 2048);
    if (++nq == BATCH) {
        while (nq)
            free(queued[--nq]);
    }
}

int main(int argc, char **argv)
{
    fixture_loop(argc, argv, 5000, enqueue);
    return 0;
}
