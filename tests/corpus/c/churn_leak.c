/* churn_leak.c - leak under churn: each request allocates and frees 40
 * KiB of buffers, and keeps 64 bytes of them by mistake. */
#include <string.h>

#include "fixture.h"

/* Visible outside this file, so that the compiler keeps what is stored. */
void *kept[1 << 16];
int nkept;

__attribute__((noinline)) static void parse_headers(int i)
{
    char *bufs[10];
    for (int k = 0; k < 10; k++) {
        bufs[k] = malloc(4096);
        memset(bufs[k], i + k, 4096);
    }
    for (int k = 0; k < 10; k++)
        free(bufs[k]);
    char *h = malloc(64); /* the header kept for a log that never reads it */
    memset(h, i, 64);
    if (nkept < (1 << 16)) kept[nkept++] = h;
}

int main(int argc, char **argv)
{
    fixture_loop(argc, argv, 5000, parse_headers);
    return nkept < 0;
}
