/* lazy_singleton.c - control: a 4 MiB lookup table built on the 500th
 * request (the first that needs it) and kept for the life of the process:
 * one step, not growth. */
#include <string.h>

#include "fixture.h"

static unsigned *table;

__attribute__((noinline)) static unsigned *lookup_table(void)
{
    if (!table) {
        table = malloc(1u << 22);
        for (unsigned i = 0; i < (1u << 20); i++)
            table[i] = i * 2654435761u;
    }
    return table;
}

static volatile unsigned sink;

static void handle(int i)
{
    char *req = malloc(1024);
    memset(req, i, 1024);
    if (i >= 500) sink += lookup_table()[i & 0xfffff];
    free(req);
}

int main(int argc, char **argv)
{
    fixture_loop(argc, argv, 5000, handle);
    return 0;
}
