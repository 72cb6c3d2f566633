/* leaky_service.c - the demo's "service": a worker that takes jobs from an
 * in-process queue, as a queue consumer does, with a bug of the kind the
 * incidents describe: every job's session is put in a cache that is never
 * trimmed (remember_session), while the parsing and the reply allocate
 * and free a lot of memory per job (churn that must not be blamed).
 * usage: leaky_service [jobs] [microseconds per job] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <memcreep.h>

struct session {
    struct session *next;
    unsigned id;
    char user[48];
    char token[136]; /* 192 bytes per session in all */
};

static struct session *sessions; /* the cache without a bound */

static char *parse_request(unsigned id)
{
    char *body = malloc(2048);
    snprintf(body, 2048, "{\"user\": \"user-%u\", \"items\": [%u, %u, %u]}", id % 977, id, id + 1,
             id + 2);
    return body;
}

static void remember_session(unsigned id, const char *body)
{
    struct session *s = malloc(sizeof(*s));
    s->id = id;
    snprintf(s->user, sizeof(s->user), "%.40s", body + 10);
    memset(s->token, 'x', sizeof(s->token));
    s->next = sessions;
    sessions = s;
}

static void reply(unsigned id)
{
    size_t n = 4096 + (id % 8) * 512;
    char *out = malloc(n);
    memset(out, ' ', n);
    free(out);
}

static void handle_job(unsigned id)
{
    char *body = parse_request(id);
    remember_session(id, body);
    reply(id);
    free(body);
}

int main(int argc, char **argv)
{
    unsigned jobs = argc > 1 ? (unsigned)atoi(argv[1]) : 1000000;
    int us = argc > 2 ? atoi(argv[2]) : 500;
    for (unsigned id = 0; id < jobs; id++) {
        handle_job(id);
        memcreep_work_done(1);
        usleep((useconds_t)us);
    }
    printf("served %u jobs, %p\n", jobs, (void *)sessions);
    return 0;
}
