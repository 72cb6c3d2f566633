/* lru_cache.c - control: an LRU cache of 500 entries of 512 bytes over an
 * unbounded key space: a miss evicts the least recently used entry. It
 * fills, then only replaces. */
#include <string.h>

#include "fixture.h"

#define CAP 500

struct entry {
    struct entry *prev, *next;
    unsigned key;
    char *value;
};

static struct entry *head, *tail;
static int count;

static void unlink_entry(struct entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        tail = e->prev;
}

static void push_front(struct entry *e)
{
    e->prev = NULL;
    e->next = head;
    if (head) head->prev = e;
    head = e;
    if (!tail) tail = e;
}

__attribute__((noinline)) static void cache_get(unsigned key)
{
    for (struct entry *e = head; e; e = e->next)
        if (e->key == key) {
            unlink_entry(e);
            push_front(e);
            return;
        }
    if (count == CAP) {
        struct entry *old = tail;
        unlink_entry(old);
        free(old->value);
        free(old);
        count--;
    }
    struct entry *e = malloc(sizeof(*e));
    e->key = key;
    e->value = malloc(512);
    memset(e->value, (int)key, 512);
    push_front(e);
    count++;
}

static void handle(int i)
{
    /* Keys drift: a working set of ~800 moving slowly upward. */
    cache_get((unsigned)(i / 4 + (unsigned)(i * 7919) % 800));
}

int main(int argc, char **argv)
{
    fixture_loop(argc, argv, 5000, handle);
    return 0;
}
