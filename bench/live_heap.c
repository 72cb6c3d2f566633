/* live_heap.c - the memory benchmark's heap: BLOCKS blocks of SIZE bytes
 * kept alive, made from STACKS distinct call stacks (one of 32 outer call
 * sites times one of 32 inner ones, so up to 1024), then held for HOLD
 * seconds so that a sampler sees the heap at rest. What memcreep adds to
 * the process is then its pointer table (per live block), its mapping (per
 * distinct stack) and what is fixed (bench/run_memory.py).
 * usage: live_heap BLOCKS SIZE STACKS HOLD */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define SITES 32

static void **blocks;

/* 32 inner and 32 outer functions, each its own call site. */
#define INNER(n)                                                                                   \
    __attribute__((noinline)) static void *inner##n(size_t size)                                   \
    {                                                                                              \
        void *p = malloc(size);                                                                    \
        __asm__ volatile("" : : "r"(p) : "memory"); /* not a tail call */                          \
        return p;                                                                                  \
    }
#define OUTER(n)                                                                                   \
    __attribute__((noinline)) static void *outer##n(void *(*in)(size_t), size_t s)                 \
    {                                                                                              \
        void *p = in(s);                                                                           \
        __asm__ volatile("" : : "r"(p) : "memory");                                                \
        return p;                                                                                  \
    }
/* clang-format off */
#define EACH(X)                                                                    \
    X(0)  X(1)  X(2)  X(3)  X(4)  X(5)  X(6)  X(7)  X(8)  X(9)  X(10) X(11) X(12)  \
    X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23) X(24) X(25)  \
    X(26) X(27) X(28) X(29) X(30) X(31)
/* clang-format on */
EACH(INNER)
EACH(OUTER)
#define NAME_IN(n)  inner##n,
#define NAME_OUT(n) outer##n,
static void *(*const inners[SITES])(size_t) = {EACH(NAME_IN)};
static void *(*const outers[SITES])(void *(*)(size_t), size_t) = {EACH(NAME_OUT)};

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: live_heap BLOCKS SIZE STACKS HOLD\n");
        return 2;
    }
    long n = atol(argv[1]), size = atol(argv[2]), stacks = atol(argv[3]);
    double hold = atof(argv[4]);
    if (n <= 0 || size <= 0 || stacks <= 0 || stacks > SITES * SITES || hold < 0) {
        fprintf(stderr, "live_heap: bad arguments\n");
        return 2;
    }
    blocks = malloc((size_t)n * sizeof(*blocks));
    if (!blocks) return 1;
    for (long i = 0; i < n; i++) {
        long k = i % stacks;
        blocks[i] = outers[k / SITES](inners[k % SITES], (size_t)size);
        if (!blocks[i]) return 1;
    }
    printf("live %ld blocks of %ld bytes from %ld stacks\n", n, size, stacks);
    fflush(stdout);
    usleep((useconds_t)(hold * 1e6));
    for (long i = 0; i < n; i++)
        free(blocks[i]);
    free(blocks);
    return 0;
}
