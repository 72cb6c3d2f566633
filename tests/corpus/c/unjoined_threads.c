/* unjoined_threads.c - thread leak: every 20 requests a joinable worker
 * thread is started to flush a batch, and never joined nor detached: each
 * keeps its stack and descriptor of the thread until the process ends. */
#include <pthread.h>

#include "fixture.h"

static void *flush_batch(void *arg)
{
    (void)arg;
    usleep(1000);
    return NULL;
}

__attribute__((noinline)) static void start_flush(void)
{
    pthread_t t;
    pthread_create(&t, NULL, flush_batch, NULL);
}

static void handle(int i)
{
    if (i % 20 == 0) start_flush();
}

int main(int argc, char **argv)
{
    fixture_loop(argc, argv, 4000, handle);
    return 0;
}
