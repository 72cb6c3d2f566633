/* map_leak.c - leak: a session table keyed by a request id that only
 * grows (each id is new), buckets chained: 160 bytes a request. */
#include <string.h>

#include "fixture.h"

#define BUCKETS 1024

struct session {
    struct session *next;
    unsigned key;
    char user[148];
};

static struct session *table[BUCKETS];

__attribute__((noinline)) static void session_put(unsigned key)
{
    struct session *s = calloc(1, sizeof(*s));
    s->key = key;
    strcpy(s->user, "anonymous");
    s->next = table[key % BUCKETS];
    table[key % BUCKETS] = s;
}

static void handle(int i)
{
    session_put((unsigned)i * 2654435761u);
}

int main(int argc, char **argv)
{
    fixture_loop(argc, argv, 5000, handle);
    return 0;
}
