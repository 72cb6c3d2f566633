/* metrics.c - `memcreep run --metrics HOST:PORT`: what the run sees, served
 * over HTTP while it runs, so that Prometheus can scrape a long soak. One
 * thread of its own accepts and answers (GET /metrics); the sampling loop
 * renders the text after the sample that follows a scrape (the scrape
 * waits for it, so what it gets is never a scrape old) and swaps it in
 * under a lock, so a slow scraper never holds up sampling.
 *
 * Both exposition formats are served from the same numbers: OpenMetrics
 * 1.0 when the scraper's Accept header asks for it (Prometheus does), the
 * Prometheus text format 0.0.4 otherwise. They differ in a counter's TYPE
 * name (OpenMetrics names the family without _total), the UNIT lines and
 * the closing "# EOF". */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/metrics.h"
#include "common/util.h"
#include "report/result.h"

#define METRICS_EVERY 0.5 /* seconds between renderings at most */
#define FRESH_WAIT    1.0 /* how long a scrape waits for a rendering of its own */
#define PENDING_MAX   32  /* connections read at once (idle ones cannot delay others) */
#define TOP_STACKS    5   /* stacks exported, by growth since the start */
#define REQ_MAX       8192

struct mc_metrics {
    int fd;
    pthread_t thread;
    int started;
    _Atomic int stop; /* set by mc_metrics_stop, read by the thread */
    pthread_mutex_t lock;
    char *text[2]; /* the last rendering: [0] Prometheus 0.0.4, [1] OpenMetrics */
    double next;
    uint64_t scrapes;
    _Atomic int wanted;      /* scraped since the last rendering */
    pthread_cond_t rendered; /* signalled with lock held when text changes */
    uint64_t generation;     /* renderings so far */
    struct mc_symbolizer *sym;
    /* Sites of the stacks shown lately: symbolizing a whole stack again at
     * every rendering would cost more than the rest of it together. */
    struct site_cache {
        pid_t pid;
        uint32_t slot;
        char site[300];
    } cache[4 * TOP_STACKS];
    unsigned cache_next;
};

/* The site of a stack, from the cache or symbolized (and then kept). */
static const char *site_of(struct mc_metrics *m, const struct mc_proc *p, uint32_t slot)
{
    for (size_t i = 0; i < sizeof(m->cache) / sizeof(m->cache[0]); i++)
        if (m->cache[i].pid == p->pid && m->cache[i].slot == slot && m->cache[i].site[0])
            return m->cache[i].site;
    struct site_cache *c = &m->cache[m->cache_next++ % (sizeof(m->cache) / sizeof(m->cache[0]))];
    c->pid = p->pid;
    c->slot = slot;
    int at, py;
    json_t *fr = mc_result_frames((struct mc_proc *)p, slot, m->sym, &at, &py, NULL);
    json_t *f = fr && at >= 0 ? json_array_get(fr, (size_t)at) : NULL;
    if (f)
        mc_report_frame_text(f, c->site, sizeof(c->site));
    else
        snprintf(c->site, sizeof(c->site), "[stack %u]", slot);
    json_decref(fr);
    return c->site;
}

/* ---- rendering ---- */

/* A growable text; on allocation failure it keeps what it had and stops. */
struct buf {
    char *p;
    size_t n, cap;
    int err;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
    if (b->err) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->err = 1;
            return;
        }
        if (b->p && b->n + (size_t)n < b->cap) {
            b->n += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap <= b->n + (size_t)n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->err = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

/* A label value with \, " and newline escaped (both formats). */
static void put_label(struct buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            put(b, "\\%c", *s);
        else if (*s == '\n')
            put(b, "\\n");
        else
            put(b, "%c", *s);
    }
}

enum kind { GAUGE, COUNTER };

/* The HELP, TYPE (and in OpenMetrics UNIT) lines of a family. name is
 * the family's name without _total. */
static void family(struct buf *b, int om, const char *name, enum kind k, const char *unit,
                   const char *help)
{
    const char *suffix = k == COUNTER && !om ? "_total" : "";
    put(b, "# HELP %s%s %s\n", name, suffix, help);
    put(b, "# TYPE %s%s %s\n", name, suffix, k == COUNTER ? "counter" : "gauge");
    if (om && unit) put(b, "# UNIT %s %s\n", name, unit);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void proc_labels(struct buf *b, const struct mc_proc *p)
{
    put(b, "{pid=\"%d\",exe=\"", (int)p->pid);
    put_label(b, base_name(p->exe));
    put(b, "\"}");
}

/* Latest kept point of a series (the series are thinned on long runs, so
 * this lags the newest sample by at most the thinning stride). */
static double last(const struct mc_points *pts, const double *a)
{
    return pts->clk.n ? a[pts->clk.n - 1] : 0;
}

struct top {
    const struct mc_proc *p;
    uint32_t slot;
    int64_t grown, live;
};

/* The stacks that grew most since the series started, over all processes. */
static int top_stacks(const struct mc_collector *c, struct top *t)
{
    int n = 0;
    for (size_t i = 0; i < c->nprocs; i++) {
        const struct mc_proc *p = c->procs[i];
        if (!p->has_map || p->end != MC_END_RUNNING || !p->pts.clk.n) continue;
        for (uint32_t s = 0; s < p->stk_cap; s++) {
            if (!p->stk[s]) continue;
            int64_t g = p->vals[s].live_bytes - p->stk[s]->bytes[0];
            if (g <= 0) continue;
            /* t[0..n) stays sorted, largest first: the new one replaces
             * the smallest when full, then moves up to its place. */
            if (n == TOP_STACKS && t[n - 1].grown >= g) continue;
            int at = n < TOP_STACKS ? n++ : TOP_STACKS - 1;
            t[at] = (struct top){p, s, g, p->vals[s].live_bytes};
            for (; at > 0 && t[at].grown > t[at - 1].grown; at--) {
                struct top x = t[at];
                t[at] = t[at - 1];
                t[at - 1] = x;
            }
        }
    }
    return n;
}

/* One sample of a stack's family, labelled with its process and site. */
static void stack_sample(struct buf *b, const char *name, const struct top *t, const char *site,
                         int64_t v)
{
    put(b, "%s{pid=\"%d\",exe=\"", name, (int)t->p->pid);
    put_label(b, base_name(t->p->exe));
    put(b, "\",stack=\"%u\",site=\"", t->slot);
    put_label(b, site);
    put(b, "\"} %lld\n", (long long)v);
}

static void render(struct mc_metrics *m, struct buf *b, int om, const struct mc_collector *c,
                   double requests, double elapsed, const struct top *t, int nt,
                   const char *const *sites)
{
    static const struct {
        const char *name, *unit, *help;
        size_t off;  /* offset of the series in struct mc_points */
        int preload; /* only for preloaded processes */
    } series[] = {
        {"memcreep_rss_bytes", "bytes", "Resident set size of the process.",
         offsetof(struct mc_points, rss), 0},
        {"memcreep_live_heap_bytes", "bytes", "Bytes the program holds in live allocations.",
         offsetof(struct mc_points, heap), 1},
        {"memcreep_allocator_held_bytes", "bytes", "Bytes glibc's malloc got from the kernel.",
         offsetof(struct mc_points, alloc_held), 1},
        {"memcreep_allocator_free_bytes", "bytes", "Free bytes glibc's malloc keeps.",
         offsetof(struct mc_points, alloc_free), 1},
        {"memcreep_fds", NULL, "Open file descriptors.", offsetof(struct mc_points, fds), 0},
        {"memcreep_sockets", NULL, "Open sockets.", offsetof(struct mc_points, sockets), 0},
        {"memcreep_tcp_close_wait", NULL, "TCP sockets in CLOSE_WAIT (the peer closed).",
         offsetof(struct mc_points, tcp_close_wait), 0},
        {"memcreep_threads", NULL, "Threads of the process.", offsetof(struct mc_points, threads),
         0},
    };
    family(b, om, "memcreep_elapsed_seconds", GAUGE, "seconds",
           "Seconds since the target started.");
    put(b, "memcreep_elapsed_seconds %.3f\n", elapsed);
    pthread_mutex_lock(&m->lock);
    unsigned long long scrapes = (unsigned long long)m->scrapes;
    pthread_mutex_unlock(&m->lock);
    family(b, om, "memcreep_scrapes", COUNTER, NULL, "Scrapes answered before this rendering.");
    put(b, "memcreep_scrapes_total %llu\n", scrapes);
    if (requests >= 0) {
        family(b, om, "memcreep_requests", COUNTER, NULL, "Requests the load driver completed.");
        put(b, "memcreep_requests_total %.0f\n", requests);
    }
    for (size_t k = 0; k < sizeof(series) / sizeof(series[0]); k++) {
        family(b, om, series[k].name, GAUGE, series[k].unit, series[k].help);
        for (size_t i = 0; i < c->nprocs; i++) {
            const struct mc_proc *p = c->procs[i];
            if (p->end != MC_END_RUNNING || !p->pts.clk.n) continue;
            if (series[k].preload && !p->has_map) continue;
            const double *a = (const double *)((const char *)&p->pts + series[k].off);
            put(b, "%s", series[k].name);
            proc_labels(b, p);
            put(b, " %.0f\n", last(&p->pts, a));
        }
    }
    family(b, om, "memcreep_work_units", COUNTER, NULL,
           "Units of work the process marked, or the requests when memcreep drives the load.");
    for (size_t i = 0; i < c->nprocs; i++) {
        const struct mc_proc *p = c->procs[i];
        if (p->end != MC_END_RUNNING || !p->pts.clk.n) continue;
        put(b, "memcreep_work_units_total");
        proc_labels(b, p);
        put(b, " %.0f\n", last(&p->pts, p->pts.work));
    }
    family(b, om, "memcreep_stack_live_bytes", GAUGE, "bytes",
           "Live bytes of the stacks that grew most since the start, by allocation site.");
    for (int i = 0; i < nt; i++)
        stack_sample(b, "memcreep_stack_live_bytes", &t[i], sites[i], t[i].live);
    family(b, om, "memcreep_stack_grown_bytes", GAUGE, "bytes",
           "Growth of the same stacks since the series started.");
    for (int i = 0; i < nt; i++)
        stack_sample(b, "memcreep_stack_grown_bytes", &t[i], sites[i], t[i].grown);
    if (om) put(b, "# EOF\n");
}

void mc_metrics_update(struct mc_metrics *m, struct mc_collector *c, double requests,
                       double elapsed, int force)
{
    if (!m) return;
    double now = mc_now();
    /* Nothing to do until someone scrapes, but a first text to answer. A
     * scrape waiting for its own rendering does not wait for the half
     * second. */
    if (!force && m->text[0] && !m->wanted) return;
    if (!force && !m->wanted && now < m->next) return;
    m->wanted = 0;
    m->next = now + METRICS_EVERY;
    struct top t[TOP_STACKS];
    memset(t, 0, sizeof(t));
    int nt = top_stacks(c, t);
    const char *sites[TOP_STACKS];
    for (int i = 0; i < nt; i++)
        sites[i] = site_of(m, t[i].p, t[i].slot);
    struct buf b[2];
    memset(b, 0, sizeof(b));
    for (int om = 0; om < 2; om++)
        render(m, &b[om], om, c, requests, elapsed, t, nt, sites);
    if (b[0].err || b[1].err) {
        free(b[0].p);
        free(b[1].p);
        return; /* short of memory: keep serving the previous text */
    }
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < 2; i++) {
        free(m->text[i]);
        m->text[i] = b[i].p;
    }
    m->generation++;
    pthread_cond_broadcast(&m->rendered);
    pthread_mutex_unlock(&m->lock);
}

/* ---- serving ---- */

/* Writes all of buf to fd, giving up on error or after the peer stalls. */
static void send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        struct pollfd pf = {fd, POLLOUT, 0};
        if (poll(&pf, 1, 2000) <= 0) return;
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) continue;
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

/* The text to serve: a rendering made after this scrape arrived, asked of
 * the sampling loop (it renders at its next sample), or the last one when
 * none comes within FRESH_WAIT (the run is ending). A copy; NULL before
 * the first sample. */
static char *fresh_text(struct mc_metrics *m, int om)
{
    pthread_mutex_lock(&m->lock);
    m->scrapes++;
    uint64_t gen = m->generation;
    m->wanted = 1;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)FRESH_WAIT;
    until.tv_nsec += (long)((FRESH_WAIT - (double)(time_t)FRESH_WAIT) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (m->generation == gen && !m->stop)
        if (pthread_cond_timedwait(&m->rendered, &m->lock, &until) != 0) break;
    char *body = m->text[om] ? strdup(m->text[om]) : NULL;
    pthread_mutex_unlock(&m->lock);
    return body;
}

/* Answers one complete request head. */
static void respond(struct mc_metrics *m, int fd, const char *req)
{
    char head[512];
    const char *status = "200 OK", *type = "text/plain; version=0.0.4; charset=utf-8";
    int get = !strncmp(req, "GET ", 4), headreq = !strncmp(req, "HEAD ", 5);
    const char *path = strchr(req, ' ');
    path = path ? path + 1 : "";
    int known = !strncmp(path, "/metrics ", 9) || !strncmp(path, "/ ", 2);
    /* Accept is matched loosely, as scrapers send it with parameters. */
    int om = strcasestr(req, "application/openmetrics-text") != NULL;
    if (om) type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    char *body = NULL;
    if (!get && !headreq) {
        status = "405 Method Not Allowed";
    } else if (!known) {
        status = "404 Not Found";
    } else {
        body = fresh_text(m, om);
        if (!body) status = "503 Service Unavailable"; /* nothing sampled yet */
    }
    if (strcmp(status, "200 OK")) type = "text/plain; charset=utf-8";
    const char *text = body ? body : status;
    size_t len = strlen(text) + (body ? 0 : 1);
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      status, type, len);
    send_all(fd, head, (size_t)hl);
    if (!headreq) {
        send_all(fd, text, strlen(text));
        if (!body) send_all(fd, "\n", 1);
    }
    free(body);
}

/* A connection whose request head is still arriving. */
struct pending {
    int fd;
    size_t n;
    double until; /* dropped then: 2 s for a whole head */
    char req[REQ_MAX + 1];
};

/* Accepts and reads up to PENDING_MAX connections at once, so that idle or
 * slow ones never hold up a scrape; each is answered once its head is in. */
static void *serve(void *arg)
{
    struct mc_metrics *m = arg;
    static struct pending pend[PENDING_MAX];
    int np = 0;
    while (!m->stop) {
        struct pollfd pf[PENDING_MAX + 1];
        pf[0] = (struct pollfd){m->fd, POLLIN, 0};
        for (int i = 0; i < np; i++)
            pf[i + 1] = (struct pollfd){pend[i].fd, POLLIN, 0};
        int r = poll(pf, (nfds_t)np + 1, 200);
        double now = mc_now();
        for (int i = np - 1; i >= 0; i--) {
            struct pending *q = &pend[i];
            int done = 0, drop = now >= q->until;
            if (r > 0 && (pf[i + 1].revents & (POLLIN | POLLHUP | POLLERR))) {
                ssize_t got = recv(q->fd, q->req + q->n, REQ_MAX - q->n, 0);
                if (got <= 0) {
                    drop = 1;
                } else {
                    q->n += (size_t)got;
                    q->req[q->n] = 0;
                    done = strstr(q->req, "\r\n\r\n") != NULL || q->n == REQ_MAX;
                }
            }
            if (done) respond(m, q->fd, q->req);
            if (done || drop) {
                close(q->fd);
                pend[i] = pend[--np];
            }
        }
        if (r > 0 && (pf[0].revents & POLLIN)) {
            int fd = accept4(m->fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0) continue;
            if (np == PENDING_MAX) { /* full: the oldest idle one goes */
                close(pend[0].fd);
                pend[0] = pend[--np];
            }
            pend[np].fd = fd;
            pend[np].n = 0;
            pend[np].req[0] = 0;
            pend[np].until = mc_now() + 2;
            np++;
        }
    }
    for (int i = 0; i < np; i++)
        close(pend[i].fd);
    return NULL;
}

int mc_metrics_start(const char *addr, struct mc_metrics **out)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1] || (size_t)(colon - addr) >= sizeof(host))
        return -EINVAL;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    /* [::1]:9100 */
    char *h = host;
    if (h[0] == '[' && h[strlen(h) - 1] == ']') {
        h[strlen(h) - 1] = 0;
        h++;
    }
    uint64_t port;
    if (mc_parse_u64(colon + 1, 1, 65535, &port) != 0) return -EINVAL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(h, colon + 1, &hints, &ai) != 0 || !ai) return -EINVAL;
    int rc, one = 1;
    struct mc_metrics *m = calloc(1, sizeof(*m));
    if (!m) {
        rc = -ENOMEM;
        goto out;
    }
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->rendered, NULL);
    m->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (m->fd < 0) {
        rc = -errno;
        goto out;
    }
    setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(m->fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(m->fd, 16) != 0) {
        rc = -errno;
        goto out;
    }
    m->sym = mc_symbolizer_new();
    if (!m->sym) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = -pthread_create(&m->thread, NULL, serve, m)) != 0) goto out;
    m->started = 1;
    *out = m;
    m = NULL;
    rc = 0;
out:
    if (m) {
        if (m->fd >= 0) close(m->fd);
        pthread_mutex_destroy(&m->lock);
        if (m->sym) mc_symbolizer_free(m->sym);
        free(m);
    }
    freeaddrinfo(ai);
    return rc;
}

void mc_metrics_stop(struct mc_metrics *m)
{
    if (!m) return;
    pthread_mutex_lock(&m->lock);
    m->stop = 1;
    pthread_cond_broadcast(&m->rendered);
    pthread_mutex_unlock(&m->lock);
    if (m->started) pthread_join(m->thread, NULL);
    close(m->fd);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->rendered);
    free(m->text[0]);
    free(m->text[1]);
    mc_symbolizer_free(m->sym);
    free(m);
}
