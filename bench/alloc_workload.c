/* alloc_workload.c - the allocation-heavy workload of the overhead
 * benchmark: 2 threads, each walking call chains 8 deep (so there are many
 * distinct stacks, as in a real service), allocating mixed sizes with
 * malloc, calloc and realloc and freeing them out of order from a working
 * set of 4096 live blocks. Deterministic: the same run every time.
 * usage: alloc_workload [rounds per thread] */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 2
#define LIVE    4096

struct state {
    uint64_t rng;
    void *live[LIVE];
    size_t size[LIVE];
    uint64_t sum;
};

static uint64_t next(struct state *s)
{
    /* xorshift64* (Vigna 2016): fast and good enough to pick sizes. */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * 0x2545f4914f6cdd1dull;
}

static size_t pick_size(struct state *s)
{
    uint64_t r = next(s);
    switch (r & 7) {
    case 0:
        return 2048 + (r >> 8) % 4096; /* a few large */
    case 1:
    case 2:
        return 256 + (r >> 8) % 1024;
    default:
        return 16 + (r >> 8) % 240; /* mostly small */
    }
}

__attribute__((noinline)) static void leaf(struct state *s, int variant)
{
    uint64_t r = next(s);
    unsigned slot = (unsigned)(r % LIVE);
    size_t n = pick_size(s);
    void *p;
    if (s->live[slot] && (r & 0x30) == 0 && s->size[slot] < 8192) {
        /* Grow the block in place or move it. */
        p = realloc(s->live[slot], s->size[slot] + n);
        if (!p) return;
        s->size[slot] += n;
        s->live[slot] = p;
        ((char *)p)[s->size[slot] - 1] = (char)variant;
        return;
    }
    free(s->live[slot]);
    p = (r & 0x40) ? calloc(1, n) : malloc(n);
    if (!p) return;
    ((char *)p)[0] = (char)variant;
    ((char *)p)[n - 1] = (char)r;
    s->live[slot] = p;
    s->size[slot] = n;
    s->sum += n;
}

/* Eight levels, each with two call sites, so that the leaf is reached
 * through 2^8 distinct stacks. */
#define LEVEL(name, callee)                                                                        \
    __attribute__((noinline)) static void name(struct state *s, int v)                             \
    {                                                                                              \
        if (next(s) & 1)                                                                           \
            callee(s, v * 2);                                                                      \
        else                                                                                       \
            callee(s, v * 2 + 1);                                                                  \
        __asm__ volatile("" ::: "memory");                                                         \
    }
LEVEL(level1, leaf)
LEVEL(level2, level1)
LEVEL(level3, level2)
LEVEL(level4, level3)
LEVEL(level5, level4)
LEVEL(level6, level5)
LEVEL(level7, level6)
LEVEL(level8, level7)

static long rounds = 5000000;

static void *worker(void *arg)
{
    struct state *s = arg;
    for (long i = 0; i < rounds; i++)
        level8(s, 0);
    for (int i = 0; i < LIVE; i++)
        free(s->live[i]);
    return NULL;
}

int main(int argc, char **argv)
{
    static struct state st[THREADS];
    pthread_t t[THREADS];
    if (argc > 1) rounds = atol(argv[1]);
    for (int i = 0; i < THREADS; i++) {
        st[i].rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
        pthread_create(&t[i], NULL, worker, &st[i]);
    }
    uint64_t sum = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        sum += st[i].sum;
    }
    printf("allocated %llu bytes\n", (unsigned long long)sum);
    return 0;
}
