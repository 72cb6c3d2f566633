/* driver.c - the load driver (see driver.h).
 *
 * One thread, one epoll set, C connections. HTTP/1.1 keeps one request in
 * flight per connection (as wrk does); HTTP/2 keeps up to `streams` per
 * connection through libnghttp2 (h2c with prior knowledge on http://, ALPN
 * "h2" on https:// with OpenSSL). In closed loop a connection sends its
 * next request as soon as it has room. At a constant rate, requests are due
 * at fixed intended times and wait in a queue when every connection is
 * busy; their latency is counted from the intended time, so a slow server
 * cannot hide its stalls by slowing the client down (no coordinated
 * omission). No allocation per request: buffers grow once and are reused. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "load/driver.h"
#include "load/h1_parser.h"
#include "load/url.h"

#define MAX_STREAMS 256
#define READ_BUF    (256 * 1024)

enum conn_state { C_CLOSED, C_CONNECTING, C_TLS, C_READY };

struct req {
    double t0; /* intended (or actual) send time */
    int status;
    int used;
    int kind; /* index in mc_load.kinds */
};

/* One kind of request, ready to send: its URLs (cycled), the fixed parts
 * of its HTTP/1.1 request and its HTTP/2 header list, and its share of
 * the mix (smooth weighted round robin, as nginx balances upstreams: each
 * turn every kind gains its weight, the richest is sent and pays the sum
 * of weights, so that the order is even, not in bursts, and repeatable). */
struct kind {
    const char *method;
    int head;
    size_t url0, nurl;
    const char *body;
    size_t body_len;
    long weight, credit;
    char h1_tail[4096];
    size_t h1_tail_len;
    nghttp2_nv *nva;
    size_t nnv;
    char lower_names[32][128];
};

struct conn {
    struct mc_load *ld;
    int fd;
    SSL *ssl;
    enum conn_state state;
    double deadline; /* connect or handshake must be done by then */
    double retry_at; /* reconnect not before */
    char *wbuf;
    size_t wlen, woff, wcap;
    uint32_t events; /* registered with epoll */
    int inflight;
    int closing; /* no new requests; close when in-flight ones finish */
    /* Connections this slot tried and answers it got, over every run: a
     * server that serves one connection at a time answers one slot only
     * (the others wait in its accept queue, or find it full). */
    uint64_t sent, answered;
    /* HTTP/1.1 */
    struct mc_h1 h1;
    double h1_t0;
    int h1_kind;
    /* HTTP/2 */
    nghttp2_session *h2;
    struct req reqs[MAX_STREAMS];
    size_t body_off[MAX_STREAMS];
};

struct mc_load {
    struct mc_load_opts o;
    struct mc_url *urls;
    struct addrinfo *ai;
    SSL_CTX *tls;
    int ep;
    struct conn *c;
    struct mc_load_stats st;
    uint64_t seq, rng;
    char *rbuf;
    /* per run */
    uint64_t target, started, finished;
    int stop_issuing;
    double next_send;
    double *queue; /* intended times of requests due but not sent */
    size_t qhead, qlen, qcap;
    uint64_t connected_ever, connect_failures;
    double last_progress;
    int fatal;
    char fatal_msg[256];
    /* the kinds of request and what each got (kstats, nkinds of them,
     * shown in the summary only for a mix) */
    struct kind *kinds;
    struct mc_load_kind_stats *kstats;
    size_t nkinds;
    long wsum;
};

static const char *err_names[MC_ERR_KINDS] = {"connect", "tls", "protocol", "reset", "timeout"};

const char *mc_load_err_name(enum mc_load_err e)
{
    return (unsigned)e < MC_ERR_KINDS ? err_names[e] : "?";
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- accounting ---- */

/* Counts a finished request of kind k sent at t0: with a status, or
 * failed with err (>= 0). */
static void finish(struct mc_load *ld, int k, double t0, int status, int err)
{
    double t = now_s();
    struct mc_load_kind_stats *ks = &ld->kstats[k];
    ld->st.done++;
    ks->done++;
    ld->finished++;
    ld->last_progress = t;
    if (err >= 0) {
        ld->st.errors[err]++;
        ks->errors++;
        return;
    }
    int d = status / 100 < 6 ? status / 100 : 0;
    ld->st.ok++;
    ks->ok++;
    ld->st.status[d]++;
    ks->status[d]++;
    double us = (t - t0) * 1e6;
    uint64_t v = us < 0 ? 0 : (uint64_t)us;
    mc_hist_record(&ld->st.hist, v);
    ks->sum_us += (double)v;
    if (v > ks->max_us) ks->max_us = v;
}

/* ---- buffers and I/O ---- */

static int wbuf_put(struct conn *c, const void *p, size_t n)
{
    if (c->wlen + n > c->wcap) {
        if (c->woff) { /* compact before growing */
            memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
            c->wlen -= c->woff;
            c->woff = 0;
        }
        if (c->wlen + n > c->wcap) {
            size_t cap = c->wcap ? c->wcap : 16384;
            while (cap < c->wlen + n)
                cap *= 2;
            char *b = realloc(c->wbuf, cap);
            if (!b) return -1;
            c->wbuf = b;
            c->wcap = cap;
        }
    }
    memcpy(c->wbuf + c->wlen, p, n);
    c->wlen += n;
    return 0;
}

/* Returns bytes read, 0 on EOF, -1 when it would block, -2 on error. */
static ssize_t c_read(struct conn *c, char *buf, size_t n)
{
    if (c->ssl) {
        int r = SSL_read(c->ssl, buf, (int)n);
        if (r > 0) return r;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return -1;
        if (e == SSL_ERROR_ZERO_RETURN) return 0;
        return -2;
    }
    ssize_t r = read(c->fd, buf, n);
    if (r >= 0) return r;
    return errno == EAGAIN || errno == EINTR ? -1 : -2;
}

static ssize_t c_write(struct conn *c, const char *buf, size_t n)
{
    if (c->ssl) {
        int r = SSL_write(c->ssl, buf, (int)n);
        if (r > 0) return r;
        int e = SSL_get_error(c->ssl, r);
        return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? -1 : -2;
    }
    ssize_t r = send(c->fd, buf, n, MSG_NOSIGNAL);
    if (r >= 0) return r;
    return errno == EAGAIN || errno == EINTR ? -1 : -2;
}

static void set_events(struct conn *c, uint32_t ev)
{
    if (c->events == ev || c->fd < 0) return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(c->ld->ep, EPOLL_CTL_MOD, c->fd, &e);
    c->events = ev;
}

/* ---- connection life ---- */

static void close_conn(struct conn *c, double retry_after)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->h2) {
        nghttp2_session_del(c->h2);
        c->h2 = NULL;
    }
    if (c->fd >= 0) {
        epoll_ctl(c->ld->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = C_CLOSED;
    c->wlen = c->woff = 0;
    c->inflight = 0;
    c->closing = 0;
    c->events = 0;
    c->retry_at = now_s() + retry_after;
    memset(c->reqs, 0, sizeof(c->reqs));
}

/* Fails everything in flight on c with err and closes it. */
static void fail_conn(struct conn *c, int err, double retry_after)
{
    struct mc_load *ld = c->ld;
    if (c->h2) {
        for (int i = 0; i < MAX_STREAMS; i++)
            if (c->reqs[i].used) finish(ld, c->reqs[i].kind, c->reqs[i].t0, 0, err);
    } else if (c->inflight) {
        finish(ld, c->h1_kind, c->h1_t0, 0, err);
    }
    close_conn(c, retry_after);
}

static int start_connect(struct conn *c)
{
    struct mc_load *ld = c->ld;
    c->sent++; /* a slot that tries counts as one waiting for an answer */
    const struct addrinfo *ai = ld->ai;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    ld->st.connections++;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
        ld->connect_failures++;
        ld->st.errors[MC_ERR_CONNECT]++;
        snprintf(ld->fatal_msg, sizeof(ld->fatal_msg), "%s", strerror(errno));
        close(fd);
        c->fd = -1;
        c->retry_at = now_s() + 0.05;
        return -1;
    }
    c->state = C_CONNECTING;
    c->deadline = now_s() + ld->o.timeout;
    struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
    c->events = EPOLLOUT;
    epoll_ctl(ld->ep, EPOLL_CTL_ADD, fd, &e);
    return 0;
}

/* ---- HTTP/2 through nghttp2 ---- */

static ssize_t h2_body_read(nghttp2_session *s, int32_t stream, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *user)
{
    struct conn *c = user;
    size_t i = (size_t)src->ptr;
    (void)s;
    (void)stream;
    const struct kind *k = &c->ld->kinds[c->reqs[i].kind];
    size_t left = k->body_len - c->body_off[i];
    size_t n = left < len ? left : len;
    memcpy(buf, k->body + c->body_off[i], n);
    c->body_off[i] += n;
    if (c->body_off[i] == k->body_len) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int h2_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                        size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                        void *user)
{
    (void)flags;
    (void)user;
    if (f->hd.type != NGHTTP2_HEADERS || namelen != 7 || memcmp(name, ":status", 7)) return 0;
    struct req *r = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!r || valuelen != 3) return 0;
    r->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
    return 0;
}

static int h2_on_data(nghttp2_session *s, uint8_t flags, int32_t stream, const uint8_t *data,
                      size_t len, void *user)
{
    struct conn *c = user;
    (void)s;
    (void)flags;
    (void)stream;
    (void)data;
    c->ld->st.body_bytes += len;
    return 0;
}

static int h2_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
    struct conn *c = user;
    (void)s;
    c->ld->st.bytes += f->hd.length + 9;
    if (f->hd.type == NGHTTP2_GOAWAY) c->closing = 1;
    return 0;
}

static int h2_on_close(nghttp2_session *s, int32_t stream, uint32_t code, void *user)
{
    struct conn *c = user;
    struct req *r = nghttp2_session_get_stream_user_data(s, stream);
    if (!r || !r->used) return 0;
    if (code == NGHTTP2_NO_ERROR && r->status >= 100) {
        finish(c->ld, r->kind, r->t0, r->status, -1);
        c->answered++;
    } else
        finish(c->ld, r->kind, r->t0, 0,
               code == NGHTTP2_PROTOCOL_ERROR ? MC_ERR_PROTOCOL : MC_ERR_RESET);
    r->used = 0;
    c->inflight--;
    return 0;
}

static nghttp2_session_callbacks *h2_callbacks(void)
{
    static nghttp2_session_callbacks *cb;
    if (cb) return cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, h2_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2_on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2_on_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_on_close);
    return cb;
}

static int h2_start(struct conn *c)
{
    if (nghttp2_session_client_new(&c->h2, h2_callbacks(), c) != 0) return -1;
    /* Windows of 2^30 - 1, as h2load's defaults: flow control must not be
     * what limits a load test. */
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (1u << 30) - 1}};
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 2);
    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, (1 << 30) - 1);
    return 0;
}

/* Moves what nghttp2 wants to send into the write buffer. */
static int h2_pull(struct conn *c)
{
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->h2, &data);
        if (n < 0) return -1;
        if (n == 0) return 0;
        if (wbuf_put(c, data, (size_t)n)) return -1;
    }
}

/* ---- requests ---- */

/* The kind of the next request (smooth weighted round robin, see struct
 * kind). */
static int next_kind(struct mc_load *ld)
{
    if (ld->nkinds == 1) return 0;
    size_t best = 0;
    for (size_t i = 0; i < ld->nkinds; i++) {
        ld->kinds[i].credit += ld->kinds[i].weight;
        if (ld->kinds[i].credit > ld->kinds[best].credit) best = i;
    }
    ld->kinds[best].credit -= ld->wsum;
    return (int)best;
}

/* The path of the next request of kind k: its URLs in turn, {seq} and
 * {rand:N} filled in. */
static void next_path(struct mc_load *ld, const struct kind *k, char *path, size_t len)
{
    const struct mc_url *u = &ld->urls[k->url0 + ld->seq % k->nurl];
    if (mc_url_expand(u->path, ld->seq, &ld->rng, path, len) < 0) snprintf(path, len, "/");
    ld->seq++;
}

/* Writes a request of kind ki (next_kind) into c's buffer. Returns 0, or
 * -1 when it cannot (the caller counts the failure against ki). */
static int send_h1(struct conn *c, double t0, int ki)
{
    struct mc_load *ld = c->ld;
    const struct kind *k = &ld->kinds[ki];
    char path[2048];
    next_path(ld, k, path, sizeof(path));
    size_t ml = strlen(k->method), pl = strlen(path);
    if (wbuf_put(c, k->method, ml) || wbuf_put(c, " ", 1) || wbuf_put(c, path, pl) ||
        wbuf_put(c, k->h1_tail, k->h1_tail_len) ||
        (k->body_len && wbuf_put(c, k->body, k->body_len)))
        return -1;
    mc_h1_begin(&c->h1, k->head);
    c->h1_t0 = t0;
    c->h1_kind = ki;
    c->inflight = 1;
    return 0;
}

/* Submits a request of kind ki on a free stream of c. Returns 0, or -1
 * when it cannot (the caller counts the failure against ki). */
static int send_h2(struct conn *c, double t0, int ki)
{
    struct mc_load *ld = c->ld;
    int slot = -1;
    for (int i = 0; i < MAX_STREAMS; i++)
        if (!c->reqs[i].used) {
            slot = i;
            break;
        }
    if (slot < 0) return -1;
    struct kind *k = &ld->kinds[ki];
    char path[2048];
    next_path(ld, k, path, sizeof(path));
    k->nva[3].value = (uint8_t *)path;
    k->nva[3].valuelen = strlen(path);
    struct req *r = &c->reqs[slot];
    r->t0 = t0;
    r->status = 0;
    r->used = 1;
    r->kind = ki;
    c->body_off[slot] = 0;
    nghttp2_data_provider prd = {.source.ptr = (void *)(size_t)slot, .read_callback = h2_body_read};
    int32_t id = nghttp2_submit_request(c->h2, NULL, k->nva, k->nnv, k->body_len ? &prd : NULL, r);
    if (id < 0) {
        r->used = 0;
        return -1;
    }
    c->inflight++;
    return 0;
}

static int room(const struct conn *c)
{
    if (c->state != C_READY || c->closing) return 0;
    if (c->h2) return c->ld->o.streams - c->inflight;
    return c->inflight == 0;
}

static int can_issue(const struct mc_load *ld)
{
    return !ld->stop_issuing && !ld->fatal && (!ld->target || ld->started < ld->target);
}

/* Sends the next request of the mix on c (its kind chosen here), started
 * at t0. Returns 0, or -1 when it could not be sent: then it is counted
 * done, failed, against its own kind. */
static int send_next(struct conn *c, double t0)
{
    struct mc_load *ld = c->ld;
    int ki = next_kind(ld);
    if ((c->h2 ? send_h2(c, t0, ki) : send_h1(c, t0, ki)) == 0) return 0;
    finish(ld, ki, t0, 0, MC_ERR_PROTOCOL);
    return -1;
}

/* Sends due requests on connections with room. */
static void dispatch(struct mc_load *ld, double now)
{
    if (ld->o.rate > 0) {
        while (can_issue(ld) && now >= ld->next_send) {
            if (ld->qlen == ld->qcap) break; /* bounded: the rest wait for room */
            ld->queue[(ld->qhead + ld->qlen++) % ld->qcap] = ld->next_send;
            ld->next_send += 1.0 / ld->o.rate;
            ld->started++;
        }
    }
    for (int i = 0; i < ld->o.conns; i++) {
        struct conn *c = &ld->c[i];
        int n = room(c), sent = 0;
        /* HTTP/2 in closed loop: refill a connection once half its streams
         * are free, so that requests go out in batches, one write each;
         * topping up one stream at a time costs a system call per request
         * and, on a small machine, CPU the server under test needs. */
        if (c->h2 && ld->o.rate <= 0 && n < (ld->o.streams + 1) / 2 && c->inflight > 0) n = 0;
        while (n-- > 0) {
            double t0;
            if (ld->o.rate > 0) {
                if (!ld->qlen) break;
                t0 = ld->queue[ld->qhead];
                ld->qhead = (ld->qhead + 1) % ld->qcap;
                ld->qlen--;
            } else {
                if (!can_issue(ld)) break;
                ld->started++;
                t0 = now;
            }
            if (send_next(c, t0) != 0) break;
            sent = 1;
            if (ld->o.new_conn) c->closing = 1;
        }
        if (sent && c->h2 && h2_pull(c) != 0) fail_conn(c, MC_ERR_PROTOCOL, 0);
    }
}

/* ---- events ---- */

static void flush(struct conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = c_write(c, c->wbuf + c->woff, c->wlen - c->woff);
        if (n == -1) {
            set_events(c, EPOLLIN | EPOLLOUT);
            return;
        }
        if (n < 0) {
            fail_conn(c, MC_ERR_RESET, 0.01);
            return;
        }
        c->woff += (size_t)n;
    }
    c->woff = c->wlen = 0;
    set_events(c, EPOLLIN);
}

static void became_ready(struct conn *c)
{
    struct mc_load *ld = c->ld;
    if (c->ssl) {
        const unsigned char *alpn = NULL;
        unsigned alen = 0;
        SSL_get0_alpn_selected(c->ssl, &alpn, &alen);
        int h2 = alen == 2 && !memcmp(alpn, "h2", 2);
        if (ld->o.proto == MC_PROTO_H2 && !h2) {
            snprintf(ld->fatal_msg, sizeof(ld->fatal_msg), "the server did not offer h2 (ALPN)");
            ld->fatal = 1;
            ld->st.errors[MC_ERR_PROTOCOL]++;
            close_conn(c, 1);
            return;
        }
    }
    c->state = C_READY;
    ld->connected_ever++;
    if (ld->o.proto == MC_PROTO_H2) {
        if (h2_start(c) != 0 || h2_pull(c) != 0) {
            fail_conn(c, MC_ERR_PROTOCOL, 0.05);
            return;
        }
    }
    set_events(c, EPOLLIN);
}

static void tls_step(struct conn *c)
{
    int r = SSL_connect(c->ssl);
    if (r == 1) {
        became_ready(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        set_events(c, EPOLLIN);
    else if (e == SSL_ERROR_WANT_WRITE)
        set_events(c, EPOLLOUT);
    else {
        struct mc_load *ld = c->ld;
        unsigned long le = ERR_get_error();
        snprintf(ld->fatal_msg, sizeof(ld->fatal_msg), "TLS handshake failed: %s",
                 le ? ERR_reason_error_string(le) : "connection closed");
        ld->st.errors[MC_ERR_TLS]++;
        ld->connect_failures++;
        close_conn(c, 0.1);
    }
}

static void connected(struct conn *c)
{
    struct mc_load *ld = c->ld;
    int err = 0;
    socklen_t el = sizeof(err);
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        snprintf(ld->fatal_msg, sizeof(ld->fatal_msg), "%s", strerror(err));
        ld->st.errors[MC_ERR_CONNECT]++;
        ld->connect_failures++;
        close_conn(c, 0.05);
        return;
    }
    if (ld->tls) {
        c->ssl = SSL_new(ld->tls);
        SSL_set_fd(c->ssl, c->fd);
        SSL_set_tlsext_host_name(c->ssl, ld->urls[0].host);
        if (!ld->o.insecure) SSL_set1_host(c->ssl, ld->urls[0].host);
        c->state = C_TLS;
        tls_step(c);
        return;
    }
    became_ready(c);
}

/* Feeds received bytes to the HTTP/1.1 parser; may complete a response. */
static void h1_input(struct conn *c, const char *buf, size_t n)
{
    struct mc_load *ld = c->ld;
    if (!c->inflight) { /* bytes nobody asked for */
        fail_conn(c, MC_ERR_PROTOCOL, 0);
        return;
    }
    size_t used = mc_h1_feed(&c->h1, buf, n);
    if (c->h1.state == MC_H1_ERROR) {
        fail_conn(c, MC_ERR_PROTOCOL, 0);
        return;
    }
    if (c->h1.state != MC_H1_DONE) return;
    ld->st.body_bytes += c->h1.body_bytes;
    finish(ld, c->h1_kind, c->h1_t0, c->h1.status, -1);
    c->answered++;
    c->inflight = 0;
    if (used < n || c->h1.close) {
        c->closing = 1; /* extra bytes: no pipelining here */
        return;
    }
    /* In closed loop the next request goes out on this connection at once,
     * as wrk sends it, not after every other event of this wake-up has been
     * read (each a copy of up to a whole body): that wait would be counted
     * as the server's latency and would lower the rate. */
    if (ld->o.rate <= 0 && !c->closing && can_issue(ld)) {
        double t0 = now_s();
        ld->started++;
        if (send_next(c, t0) != 0) return;
        if (ld->o.new_conn) c->closing = 1;
        flush(c);
    }
}

static void readable(struct conn *c)
{
    struct mc_load *ld = c->ld;
    for (;;) {
        ssize_t n = c_read(c, ld->rbuf, READ_BUF);
        if (n == -1) break;
        if (n <= 0) {
            if (!c->h2 && c->inflight && n == 0) {
                mc_h1_eof(&c->h1);
                if (c->h1.state == MC_H1_DONE) {
                    ld->st.body_bytes += c->h1.body_bytes;
                    finish(ld, c->h1_kind, c->h1_t0, c->h1.status, -1);
                    c->answered++;
                    c->inflight = 0;
                }
            }
            fail_conn(c, MC_ERR_RESET, 0);
            return;
        }
        if (c->h2) {
            if (nghttp2_session_mem_recv(c->h2, (const uint8_t *)ld->rbuf, (size_t)n) < 0) {
                fail_conn(c, MC_ERR_PROTOCOL, 0);
                return;
            }
            if (h2_pull(c) != 0) {
                fail_conn(c, MC_ERR_PROTOCOL, 0);
                return;
            }
        } else {
            ld->st.bytes += (uint64_t)n;
            h1_input(c, ld->rbuf, (size_t)n);
            if (c->state == C_CLOSED) return;
        }
        if ((size_t)n < READ_BUF && !c->ssl) break;
    }
    if (c->closing && c->inflight == 0) close_conn(c, 0);
}

static void on_event(struct conn *c, uint32_t ev)
{
    if (c->state == C_CONNECTING) {
        connected(c);
        return;
    }
    if (c->state == C_TLS) {
        tls_step(c);
        return;
    }
    if (c->state != C_READY) return;
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) readable(c);
    if (c->state == C_READY && (ev & EPOLLOUT)) flush(c);
}

/* Connections past their connect deadline, and requests past theirs. */
static void check_timeouts(struct mc_load *ld, double now)
{
    for (int i = 0; i < ld->o.conns; i++) {
        struct conn *c = &ld->c[i];
        if ((c->state == C_CONNECTING || c->state == C_TLS) && now > c->deadline) {
            ld->st.errors[c->state == C_TLS ? MC_ERR_TLS : MC_ERR_CONNECT]++;
            ld->connect_failures++;
            snprintf(ld->fatal_msg, sizeof(ld->fatal_msg), "connect timed out");
            close_conn(c, 0);
            continue;
        }
        if (c->state != C_READY || !c->inflight) continue;
        double oldest = c->h1_t0;
        if (c->h2) {
            oldest = now;
            for (int k = 0; k < MAX_STREAMS; k++)
                if (c->reqs[k].used && c->reqs[k].t0 < oldest) oldest = c->reqs[k].t0;
        }
        if (now - oldest > ld->o.timeout) fail_conn(c, MC_ERR_TIMEOUT, 0);
    }
}

int mc_load_run(struct mc_load *ld, uint64_t requests, double seconds, double tick_s,
                int (*tick)(void *arg), void *arg, char *err, size_t errlen)
{
    struct epoll_event evs[256];
    double start = now_s(), end = seconds > 0 ? start + seconds : INFINITY;
    double next_tick = tick_s > 0 ? start + tick_s : INFINITY, drain_until = INFINITY;
    double next_check = start;
    ld->target = requests;
    ld->started = ld->finished = 0;
    ld->stop_issuing = 0;
    ld->next_send = start;
    ld->last_progress = start;
    int rc = 0;
    for (;;) {
        double now = now_s();
        if (!ld->stop_issuing &&
            ((ld->target && ld->started >= ld->target) || now >= end || ld->fatal)) {
            ld->stop_issuing = 1;
            ld->started -= ld->qlen; /* due but never sent: not part of this run */
            ld->qlen = 0;
            drain_until = now + ld->o.timeout;
        }
        int inflight = 0;
        for (int i = 0; i < ld->o.conns; i++)
            inflight += ld->c[i].inflight;
        if (ld->stop_issuing && inflight == 0) break;
        if (now > drain_until) {
            for (int i = 0; i < ld->o.conns; i++)
                if (ld->c[i].inflight) fail_conn(&ld->c[i], MC_ERR_TIMEOUT, 0);
            break;
        }
        /* Nothing ever connected after several tries per connection, or no
         * progress at all for a whole timeout: the server is not there. */
        if (!ld->connected_ever && ld->connect_failures >= (uint64_t)ld->o.conns * 3 + 2) {
            snprintf(err, errlen, "cannot connect to %s: %s", ld->urls[0].authority, ld->fatal_msg);
            rc = -1;
            break;
        }
        if (inflight == 0 && !ld->stop_issuing && now - ld->last_progress > ld->o.timeout + 1 &&
            ld->connect_failures) {
            snprintf(err, errlen, "%s stopped answering: %s", ld->urls[0].authority, ld->fatal_msg);
            rc = -1;
            break;
        }
        if (ld->fatal && rc == 0) {
            snprintf(err, errlen, "%s: %s", ld->urls[0].authority, ld->fatal_msg);
            rc = -1;
        }
        /* Open only connections that will have a request to carry: with
         * --new-conn, one connection per request exactly. */
        uint64_t pending = 0;
        for (int i = 0; i < ld->o.conns; i++)
            pending += ld->c[i].state == C_CONNECTING || ld->c[i].state == C_TLS ||
                       (ld->c[i].state == C_READY && !ld->c[i].closing && !ld->c[i].inflight);
        for (int i = 0; i < ld->o.conns; i++) {
            struct conn *c = &ld->c[i];
            if (c->state != C_CLOSED || now < c->retry_at || !can_issue(ld)) continue;
            if (ld->target && ld->o.rate <= 0 && ld->started + pending >= ld->target) break;
            if (start_connect(c) == 0) pending++;
        }
        dispatch(ld, now);
        for (int i = 0; i < ld->o.conns; i++)
            if (ld->c[i].state == C_READY && ld->c[i].wlen > ld->c[i].woff) flush(&ld->c[i]);

        double wake = next_tick < drain_until ? next_tick : drain_until;
        if (ld->o.rate > 0 && can_issue(ld) && ld->next_send < wake) wake = ld->next_send;
        if (next_check + 0.01 < wake) wake = next_check + 0.01;
        int ms = (int)((wake - now_s()) * 1000);
        if (ms < 0) ms = 0;
        if (ms > 50) ms = 50;
        int n = epoll_wait(ld->ep, evs, 256, ms);
        for (int i = 0; i < n; i++)
            on_event(evs[i].data.ptr, evs[i].events);
        now = now_s();
        if (now >= next_check + 0.01) {
            check_timeouts(ld, now);
            next_check = now;
        }
        if (now >= next_tick) {
            next_tick = now + tick_s;
            if (tick && tick(arg)) end = now; /* stop issuing at the next turn */
        }
    }
    ld->st.elapsed += now_s() - start;
    ld->st.conns_answered = ld->st.conns_unanswered = 0;
    ld->st.top_answered = 0;
    for (int i = 0; i < ld->o.conns; i++) {
        ld->st.conns_answered += ld->c[i].answered > 0;
        ld->st.conns_unanswered += ld->c[i].sent > 0 && !ld->c[i].answered;
        if (ld->c[i].answered > ld->st.top_answered) ld->st.top_answered = ld->c[i].answered;
    }
    return rc;
}

/* ---- set-up ---- */

/* Builds the fixed parts of kind k's requests: the HTTP/1.1 tail after
 * the path, and the HTTP/2 header list (pseudo-headers, then the user's
 * with lower-case names). Returns 0, or -1 with a reason in err. */
static int build_kind(struct mc_load *ld, struct kind *k, const char *const *headers,
                      size_t nheaders, char *err, size_t errlen)
{
    const struct mc_url *u = &ld->urls[k->url0];
    size_t n = 0;
    int w = snprintf(k->h1_tail, sizeof(k->h1_tail),
                     " HTTP/1.1\r\nHost: %s\r\nUser-Agent: memcreep-load\r\n", u->authority);
    n = (size_t)w;
    for (size_t i = 0; i < nheaders && n < sizeof(k->h1_tail); i++)
        n += (size_t)snprintf(k->h1_tail + n, sizeof(k->h1_tail) - n, "%s\r\n", headers[i]);
    if (k->body_len && n < sizeof(k->h1_tail))
        n += (size_t)snprintf(k->h1_tail + n, sizeof(k->h1_tail) - n, "Content-Length: %zu\r\n",
                              k->body_len);
    if (n + 3 > sizeof(k->h1_tail)) {
        snprintf(err, errlen, "request headers too long");
        return -1;
    }
    memcpy(k->h1_tail + n, "\r\n", 3);
    k->h1_tail_len = n + 2;

    if (nheaders > 32) {
        snprintf(err, errlen, "at most 32 extra headers");
        return -1;
    }
    k->nva = calloc(5 + nheaders, sizeof(nghttp2_nv));
    if (!k->nva) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    static const char *names[] = {":method", ":scheme", ":authority", ":path", "user-agent"};
    const char *values[] = {k->method, u->tls ? "https" : "http", u->authority, "/",
                            "memcreep-load"};
    for (int i = 0; i < 5; i++) {
        k->nva[i].name = (uint8_t *)names[i];
        k->nva[i].namelen = strlen(names[i]);
        k->nva[i].value = (uint8_t *)values[i];
        k->nva[i].valuelen = strlen(values[i]);
        k->nva[i].flags = NGHTTP2_NV_FLAG_NONE;
    }
    k->nnv = 5;
    for (size_t i = 0; i < nheaders; i++) {
        const char *h = headers[i], *colon = strchr(h, ':');
        if (!colon || colon == h || (size_t)(colon - h) >= sizeof(k->lower_names[0])) {
            snprintf(err, errlen, "bad header '%s' (expected 'Name: value')", h);
            return -1;
        }
        size_t nl = (size_t)(colon - h);
        for (size_t j = 0; j < nl; j++)
            k->lower_names[i][j] = (char)tolower((unsigned char)h[j]);
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        nghttp2_nv *nv = &k->nva[k->nnv++];
        nv->name = (uint8_t *)k->lower_names[i];
        nv->namelen = nl;
        nv->value = (uint8_t *)v;
        nv->valuelen = strlen(v);
        nv->flags = NGHTTP2_NV_FLAG_NONE;
    }
    return 0;
}

/* The kinds of request: one per entry of the mix, or one for the whole
 * run (its URLs cycled). Returns 0, or -1 with a reason in err. */
static int build_kinds(struct mc_load *ld, char *err, size_t errlen)
{
    const struct mc_load_opts *o = &ld->o;
    ld->nkinds = o->nmix ? o->nmix : 1;
    ld->kinds = calloc(ld->nkinds, sizeof(*ld->kinds));
    ld->kstats = calloc(ld->nkinds, sizeof(*ld->kstats));
    if (!ld->kinds || !ld->kstats) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < ld->nkinds; i++) {
        struct kind *k = &ld->kinds[i];
        const struct mc_load_req *q = o->nmix ? &o->mix[i] : NULL;
        k->method = q ? q->method : o->method;
        if (!k->method) k->method = (q ? q->body : o->body) ? "POST" : "GET";
        k->head = !strcmp(k->method, "HEAD");
        k->url0 = q ? i : 0;
        k->nurl = q ? 1 : o->nurls;
        k->body = q ? q->body : o->body;
        k->body_len = q ? q->body_len : o->body_len;
        k->weight = q && q->weight ? (long)q->weight : 1;
        ld->wsum += k->weight;
        struct mc_load_kind_stats *ks = &ld->kstats[i];
        ks->weight = (unsigned)k->weight;
        if (q && q->name)
            snprintf(ks->name, sizeof(ks->name), "%s", q->name);
        else
            snprintf(ks->name, sizeof(ks->name), "%s %s", k->method, ld->urls[k->url0].path);
        if (build_kind(ld, k, q ? q->headers : o->headers, q ? q->nheaders : o->nheaders, err,
                       errlen) != 0)
            return -1;
    }
    if (o->nmix) {
        ld->st.kinds = ld->kstats;
        ld->st.nkinds = ld->nkinds;
    }
    return 0;
}

int mc_load_new(const struct mc_load_opts *o, struct mc_load **out, char *err, size_t errlen)
{
    struct mc_load *ld = calloc(1, sizeof(*ld));
    if (!ld) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ld->o = *o;
    ld->ep = -1;
    ld->rng = 0x9e3779b97f4a7c15ull;
    mc_hist_reset(&ld->st.hist);
    size_t nurls = o->nmix ? o->nmix : o->nurls;
    if (!nurls || o->nmix > MC_LOAD_KINDS_MAX || o->conns < 1 || o->streams < 1 ||
        o->streams > MAX_STREAMS || o->timeout <= 0) {
        snprintf(err, errlen, "bad load options");
        goto fail;
    }
    ld->urls = calloc(nurls, sizeof(*ld->urls));
    ld->c = calloc((size_t)o->conns, sizeof(*ld->c));
    ld->rbuf = malloc(READ_BUF);
    ld->qcap = 1 << 20;
    ld->queue = o->rate > 0 ? malloc(ld->qcap * sizeof(double)) : NULL;
    if (!ld->urls || !ld->c || !ld->rbuf || (o->rate > 0 && !ld->queue)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < nurls; i++) {
        const char *url = o->nmix ? o->mix[i].url : o->urls[i];
        if (mc_url_parse(url, &ld->urls[i], err, errlen) != 0) goto fail;
        if (i && (ld->urls[i].tls != ld->urls[0].tls ||
                  strcmp(ld->urls[i].authority, ld->urls[0].authority))) {
            snprintf(err, errlen, "all URLs must share scheme, host and port ('%s' differs)", url);
            goto fail;
        }
    }
    if (build_kinds(ld, err, errlen) != 0) goto fail;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int gai = getaddrinfo(ld->urls[0].host, ld->urls[0].port, &hints, &ld->ai);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve '%s': %s", ld->urls[0].host, gai_strerror(gai));
        ld->ai = NULL;
        goto fail;
    }
    if (ld->urls[0].tls) {
        ld->tls = SSL_CTX_new(TLS_client_method());
        if (!ld->tls) {
            snprintf(err, errlen, "cannot set up TLS");
            goto fail;
        }
        SSL_CTX_set_min_proto_version(ld->tls, TLS1_2_VERSION);
        if (o->insecure) {
            SSL_CTX_set_verify(ld->tls, SSL_VERIFY_NONE, NULL);
        } else {
            SSL_CTX_set_verify(ld->tls, SSL_VERIFY_PEER, NULL);
            SSL_CTX_set_default_verify_paths(ld->tls);
        }
        static const unsigned char h2[] = "\x02h2", h1[] = "\x08http/1.1";
        if (o->proto == MC_PROTO_H2)
            SSL_CTX_set_alpn_protos(ld->tls, h2, sizeof(h2) - 1);
        else
            SSL_CTX_set_alpn_protos(ld->tls, h1, sizeof(h1) - 1);
    }
    ld->ep = epoll_create1(EPOLL_CLOEXEC);
    if (ld->ep < 0) {
        snprintf(err, errlen, "epoll: %s", strerror(errno));
        goto fail;
    }
    for (int i = 0; i < o->conns; i++) {
        ld->c[i].ld = ld;
        ld->c[i].fd = -1;
    }
    *out = ld;
    return 0;
fail:
    mc_load_free(ld);
    return -1;
}

void mc_load_free(struct mc_load *ld)
{
    if (!ld) return;
    for (int i = 0; ld->c && i < ld->o.conns; i++) {
        if (ld->c[i].ld) close_conn(&ld->c[i], 0);
        free(ld->c[i].wbuf);
    }
    if (ld->ep >= 0) close(ld->ep);
    if (ld->ai) freeaddrinfo(ld->ai);
    if (ld->tls) SSL_CTX_free(ld->tls);
    for (size_t i = 0; ld->kinds && i < ld->nkinds; i++)
        free(ld->kinds[i].nva);
    free(ld->kinds);
    free(ld->kstats);
    free(ld->queue);
    free(ld->rbuf);
    free(ld->c);
    free(ld->urls);
    free(ld);
}

const struct mc_load_stats *mc_load_stats(const struct mc_load *ld)
{
    return &ld->st;
}
