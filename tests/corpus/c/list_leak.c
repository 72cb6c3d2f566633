/* list_leak.c - leak: every request's record is appended to an audit list
 * that nothing ever trims (96 bytes a request). */
#include <string.h>

#include "fixture.h"

struct record {
    struct record *next;
    int id;
    char path[84];
};

static struct record *audit;

__attribute__((noinline)) static void remember_request(int id)
{
    struct record *r = malloc(sizeof(*r));
    r->id = id;
    strcpy(r->path, "/api/items");
    r->next = audit;
    audit = r;
}

static void handle(int i)
{
    char *scratch = malloc(4096); /* the request's own work, freed */
    memset(scratch, i, 4096);
    remember_request(i);
    free(scratch);
}

int main(int argc, char **argv)
{
    fixture_loop(argc, argv, 5000, handle);
    return 0;
}
