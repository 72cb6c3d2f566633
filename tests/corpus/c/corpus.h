/* corpus.h - the request loop every C program of the corpus runs: a
 * service handling N requests, one every US microseconds, each marked as a
 * unit of work. argv[1] requests, argv[2] microseconds between them. */
#ifndef MC_CORPUS_H
#define MC_CORPUS_H

#include <stdlib.h>
#include <unistd.h>

#include <memcreep.h>

static inline void corpus_serve(int argc, char **argv, int requests, void (*handle)(int))
{
    int n = argc > 1 ? atoi(argv[1]) : requests;
    int us = argc > 2 ? atoi(argv[2]) : 1000;
    for (int i = 0; i < n; i++) {
        handle(i);
        memcreep_work_done(1);
        if (us > 0) usleep((useconds_t)us);
    }
}

#endif
