/* driver.h - the HTTP/1.1 and HTTP/2 load driver: connections, requests,
 * closed loop or constant rate, statistics. Used by `memcreep load` and by
 * `memcreep run --url`. Single-threaded, epoll-based. */
#ifndef MC_DRIVER_H
#define MC_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "load/hist.h"

enum mc_proto {
    MC_PROTO_H1 = 1,
    MC_PROTO_H2 = 2,
};

/* One kind of request in a mix (--mix): chosen in proportion to its
 * weight, counted apart. */
struct mc_load_req {
    const char *name; /* label in summaries; "METHOD path" when NULL */
    const char *method;
    const char *url;            /* same scheme, host and port as the others */
    const char *const *headers; /* "Name: value" */
    size_t nheaders;
    const char *body; /* or NULL */
    size_t body_len;
    unsigned weight; /* >= 1 */
};

#define MC_LOAD_KINDS_MAX 64 /* request kinds in one mix */

struct mc_load_opts {
    const char *const *urls; /* same scheme, host and port; cycled */
    size_t nurls;
    enum mc_proto proto;
    int conns;   /* connections */
    int streams; /* concurrent streams per HTTP/2 connection */
    double rate; /* requests per second in open loop; 0 = closed loop */
    const char *method;
    const char *const *headers; /* "Name: value" */
    size_t nheaders;
    const char *body; /* request body or NULL */
    size_t body_len;
    /* A mix of requests: when nmix > 0 it replaces urls, method, headers
     * and body. */
    const struct mc_load_req *mix;
    size_t nmix;
    int new_conn;   /* a new connection for every request */
    int insecure;   /* do not verify the server's certificate */
    double timeout; /* seconds a request (or connect) may take */
};

/* Errors by kind; each failed request is counted once. */
enum mc_load_err {
    MC_ERR_CONNECT,  /* refused, unreachable, connect timeout */
    MC_ERR_TLS,      /* handshake or certificate */
    MC_ERR_PROTOCOL, /* not HTTP, malformed, HTTP/2 protocol error, no ALPN h2 */
    MC_ERR_RESET,    /* closed or reset mid-response, stream reset */
    MC_ERR_TIMEOUT,  /* no complete response in time */
    MC_ERR_KINDS
};

/* What one kind of request of a mix got (the whole run's when there is
 * no mix). */
struct mc_load_kind_stats {
    char name[96];
    unsigned weight;
    uint64_t done, ok, errors;
    uint64_t status[6]; /* by first digit, as in mc_load_stats */
    double sum_us;      /* latency of those with a status, summed */
    uint64_t max_us;
};

struct mc_load_stats {
    uint64_t done;      /* requests finished, with or without error */
    uint64_t ok;        /* finished with a status line */
    uint64_t status[6]; /* by first digit: [1]=1xx .. [5]=5xx */
    uint64_t errors[MC_ERR_KINDS];
    uint64_t bytes; /* response bytes received (headers and body) */
    uint64_t body_bytes;
    uint64_t connections; /* connections opened */
    /* Of the connection slots (-c): those that got at least one answer, and
     * those that tried to connect and never got one (over every run). */
    uint32_t conns_answered, conns_unanswered;
    uint64_t top_answered; /* answers the busiest slot got */
    double elapsed;        /* seconds spent in mc_load_run */
    struct mc_hist hist;   /* latency of finished requests, microseconds */
    /* By kind of request, in the mix's order (nkinds 0 without a mix). */
    const struct mc_load_kind_stats *kinds;
    size_t nkinds;
};

struct mc_load;

/* Makes a driver: parses the URLs, resolves the host, prepares TLS.
 * Returns 0, or -1 with a one-line reason in err. *out is freed with
 * mc_load_free. */
int mc_load_new(const struct mc_load_opts *o, struct mc_load **out, char *err, size_t errlen);
void mc_load_free(struct mc_load *ld);

/* Runs until `requests` more requests have finished (0: no limit) or
 * `seconds` have passed (0: no limit), then lets what is in flight finish
 * (bounded by the timeout). Calls tick(arg) about every tick_s seconds; a
 * non-zero return stops the run early. Connections stay open between runs.
 * Returns 0, or -1 with a reason in err when the run could not go on (no
 * connection could ever be made). */
int mc_load_run(struct mc_load *ld, uint64_t requests, double seconds, double tick_s,
                int (*tick)(void *arg), void *arg, char *err, size_t errlen);
/* Statistics since the driver was made (cumulative over runs). */
const struct mc_load_stats *mc_load_stats(const struct mc_load *ld);
/* Names of error kinds ("connect", "tls", ...). */
const char *mc_load_err_name(enum mc_load_err e);

#endif
