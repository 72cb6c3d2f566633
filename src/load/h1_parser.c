/* h1_parser.c - HTTP/1.1 response parsing (RFC 9112), written here because
 * the driver needs only the response side, incrementally, with limits, and
 * the parser is small enough to fuzz to exhaustion. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "load/h1_parser.h"

void mc_h1_begin(struct mc_h1 *p, int head)
{
    memset(p, 0, offsetof(struct mc_h1, line));
    p->head = head;
    p->state = MC_H1_STATUS;
}

static size_t fail(struct mc_h1 *p, const char *why, size_t consumed)
{
    p->state = MC_H1_ERROR;
    p->error = why;
    return consumed;
}

/* "HTTP/1.x NNN reason" */
static int status_line(struct mc_h1 *p)
{
    const char *l = p->line;
    if (p->line_len < 12 || strncmp(l, "HTTP/1.", 7) || (l[7] != '0' && l[7] != '1') ||
        l[8] != ' ' || !isdigit((unsigned char)l[9]) || !isdigit((unsigned char)l[10]) ||
        !isdigit((unsigned char)l[11]) || (p->line_len > 12 && l[12] != ' '))
        return -1;
    p->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    if (p->status < 100) return -1;
    p->close = l[7] == '0'; /* HTTP/1.0 closes unless it says keep-alive */
    return 0;
}

static int header_is(const char *name, size_t nl, const char *want)
{
    return nl == strlen(want) && !strncasecmp(name, want, nl);
}

/* Finds a comma-separated token in a header value, case-insensitively. */
static int value_has(const char *v, size_t vl, const char *tok)
{
    size_t tl = strlen(tok);
    for (size_t i = 0; i + tl <= vl; i++)
        if (!strncasecmp(v + i, tok, tl) && (i == 0 || v[i - 1] == ',' || v[i - 1] == ' ') &&
            (i + tl == vl || v[i + tl] == ',' || v[i + tl] == ' '))
            return 1;
    return 0;
}

static int header_line(struct mc_h1 *p)
{
    char *colon = memchr(p->line, ':', p->line_len);
    if (!colon || colon == p->line) return -1;
    size_t nl = (size_t)(colon - p->line);
    for (size_t i = 0; i < nl; i++)
        if (!isgraph((unsigned char)p->line[i])) return -1;
    const char *v = colon + 1;
    size_t vl = p->line_len - nl - 1;
    while (vl && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        vl--;
    if (header_is(p->line, nl, "content-length")) {
        uint64_t n = 0;
        if (vl == 0 || vl > 18) return -1;
        for (size_t i = 0; i < vl; i++) {
            if (!isdigit((unsigned char)v[i])) return -1;
            n = n * 10 + (uint64_t)(v[i] - '0');
        }
        if (p->has_length && n != p->remaining) return -1; /* conflicting lengths */
        p->has_length = 1;
        p->remaining = n;
    } else if (header_is(p->line, nl, "transfer-encoding")) {
        if (value_has(v, vl, "chunked")) p->chunked = 1;
    } else if (header_is(p->line, nl, "connection")) {
        if (value_has(v, vl, "close")) p->close = 1;
        if (value_has(v, vl, "keep-alive")) p->close = 0;
    }
    return 0;
}

/* Headers ended: decide how the body is delimited (RFC 9112, 6.3). */
static void headers_done(struct mc_h1 *p)
{
    if (p->status < 200) { /* 1xx: another status line follows */
        int head = p->head;
        mc_h1_begin(p, head);
        return;
    }
    if (p->head || p->status == 204 || p->status == 304) {
        p->state = MC_H1_DONE;
    } else if (p->chunked) {
        p->state = MC_H1_CHUNK_SIZE;
    } else if (p->has_length) {
        p->state = p->remaining ? MC_H1_BODY_LEN : MC_H1_DONE;
    } else {
        p->state = MC_H1_BODY_EOF;
        p->close = 1;
    }
}

static int chunk_size(struct mc_h1 *p)
{
    uint64_t n = 0;
    size_t i = 0, digits = 0;
    for (; i < p->line_len && isxdigit((unsigned char)p->line[i]); i++, digits++) {
        if (digits >= 15) return -1;
        char c = (char)tolower((unsigned char)p->line[i]);
        n = n * 16 + (uint64_t)(isdigit((unsigned char)c) ? c - '0' : c - 'a' + 10);
    }
    if (digits == 0 || (i < p->line_len && p->line[i] != ';' && p->line[i] != ' ')) return -1;
    p->remaining = n;
    p->state = n ? MC_H1_CHUNK_DATA : MC_H1_TRAILERS;
    return 0;
}

/* Collects one CRLF- (or LF-) terminated line. Returns 1 when complete. */
static int take_line(struct mc_h1 *p, const char *buf, size_t len, size_t *i)
{
    while (*i < len) {
        char c = buf[(*i)++];
        if (c == '\n') {
            if (p->line_len && p->line[p->line_len - 1] == '\r') p->line_len--;
            p->line[p->line_len] = 0;
            return 1;
        }
        if (p->line_len >= MC_H1_LINE_MAX - 1) return -1;
        p->line[p->line_len++] = c;
    }
    return 0;
}

size_t mc_h1_feed(struct mc_h1 *p, const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len) {
        switch (p->state) {
        case MC_H1_STATUS:
        case MC_H1_HEADERS:
        case MC_H1_CHUNK_SIZE:
        case MC_H1_CHUNK_END:
        case MC_H1_TRAILERS: {
            size_t before = i;
            int r = take_line(p, buf, len, &i);
            if (p->state <= MC_H1_HEADERS || p->state == MC_H1_TRAILERS) {
                p->header_bytes += i - before;
                if (p->header_bytes > MC_H1_HEADERS_MAX) return fail(p, "headers too large", i);
            }
            if (r < 0) return fail(p, "line too long", i);
            if (r == 0) return i;
            if (p->state == MC_H1_STATUS) {
                if (p->line_len == 0 && p->header_bytes <= 2) { /* stray CRLF */
                    p->line_len = 0;
                    continue;
                }
                if (status_line(p)) return fail(p, "not an HTTP/1.x status line", i);
                p->state = MC_H1_HEADERS;
            } else if (p->state == MC_H1_HEADERS) {
                if (p->line_len == 0)
                    headers_done(p);
                else if (header_line(p))
                    return fail(p, "malformed header", i);
            } else if (p->state == MC_H1_CHUNK_SIZE) {
                if (chunk_size(p)) return fail(p, "bad chunk size", i);
            } else if (p->state == MC_H1_CHUNK_END) {
                if (p->line_len) return fail(p, "missing CRLF after chunk", i);
                p->state = MC_H1_CHUNK_SIZE;
            } else if (p->line_len == 0) { /* end of trailers */
                p->state = MC_H1_DONE;
            }
            p->line_len = 0;
            break;
        }
        case MC_H1_BODY_LEN:
        case MC_H1_CHUNK_DATA: {
            size_t n = len - i;
            if (n > p->remaining) n = (size_t)p->remaining;
            p->remaining -= n;
            p->body_bytes += n;
            i += n;
            if (!p->remaining) p->state = p->state == MC_H1_BODY_LEN ? MC_H1_DONE : MC_H1_CHUNK_END;
            break;
        }
        case MC_H1_BODY_EOF:
            p->body_bytes += len - i;
            return len;
        case MC_H1_DONE:
        case MC_H1_ERROR:
            return i;
        }
        if (p->state == MC_H1_DONE) return i;
    }
    return i;
}

void mc_h1_eof(struct mc_h1 *p)
{
    if (p->state == MC_H1_BODY_EOF)
        p->state = MC_H1_DONE;
    else if (p->state != MC_H1_DONE && p->state != MC_H1_ERROR)
        fail(p, "connection closed mid-response", 0);
}
