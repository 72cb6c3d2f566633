/* interned.c - control: header names interned in a table: 300 distinct
 * names, each copied once at its first sight; later requests find them. */
#include <stdio.h>
#include <string.h>

#include "fixture.h"

#define NAMES 300

static char *names[NAMES];
static int nnames;

__attribute__((noinline)) static const char *intern(const char *s)
{
    for (int i = 0; i < nnames; i++)
        if (!strcmp(names[i], s)) return names[i];
    return names[nnames++] = strdup(s);
}

static void handle(int i)
{
    char buf[32];
    /* The names seen grow slowly to all 300 within the first fifth. */
    int limit = i < 1000 ? 1 + i * NAMES / 1000 : NAMES;
    snprintf(buf, sizeof(buf), "x-header-%d", (i * 7919) % limit);
    intern(buf);
}

int main(int argc, char **argv)
{
    fixture_loop(argc, argv, 5000, handle);
    return 0;
}
