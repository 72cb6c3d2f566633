/* buffer_growth.c - control: a reusable response buffer that realloc
 * doubles until it fits the largest response seen; responses grow in size
 * over the first third of the run, then stay under the maximum. */
#include <string.h>

#include "fixture.h"

static char *buf;
static size_t cap;

__attribute__((noinline)) static void render(int i)
{
    size_t need = i < 1500 ? 1024 + (size_t)i * 600 : 1024 + (size_t)(i % 1500) * 600;
    if (need > cap) {
        while (cap < need)
            cap = cap ? 2 * cap : 4096;
        buf = realloc(buf, cap);
    }
    memset(buf, i, need);
}

int main(int argc, char **argv)
{
    fixture_loop(argc, argv, 5000, render);
    return 0;
}
