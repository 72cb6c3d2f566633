/* url.c - URL parsing and placeholder expansion for the load driver.
 * Written here rather than taken from a library: only the http and https
 * schemes with an authority and a path are accepted, which is a few lines,
 * and the placeholders are memcreep's own. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load/url.h"

int mc_url_parse(const char *s, struct mc_url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof(*u));
    const char *p;
    if (!strncmp(s, "http://", 7)) {
        p = s + 7;
    } else if (!strncmp(s, "https://", 8)) {
        p = s + 8;
        u->tls = 1;
    } else {
        const char *colon = strstr(s, "://");
        if (colon)
            snprintf(err, errlen, "unsupported scheme '%.*s' in '%s' (http and https only)",
                     (int)(colon - s), s, s);
        else
            snprintf(err, errlen, "malformed URL '%s' (expected http://host[:port]/path)", s);
        return -1;
    }
    const char *hs = p, *he;
    /* user:password@host: an '@' before the path. */
    size_t auth_len = strcspn(p, "/?#");
    const char *at = memchr(p, '@', auth_len);
    if (at) {
        snprintf(err, errlen,
                 "'%s' has user information ('%.*s@'): not supported, send an Authorization "
                 "header with -H instead",
                 s, (int)(at - p), p);
        return -1;
    }
    if (*p == '[') {
        he = strchr(p, ']');
        if (!he) goto bad;
        hs = p + 1;
        p = he + 1;
    } else {
        while (*p && *p != ':' && *p != '/' && *p != '?')
            p++;
        he = p;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= sizeof(u->host)) goto bad;
    memcpy(u->host, hs, hl);
    for (size_t i = 0; i < hl; i++)
        if (isspace((unsigned char)u->host[i]) || u->host[i] == '@') goto bad;
    if (*p == ':') {
        p++;
        const char *ps = p;
        while (isdigit((unsigned char)*p))
            p++;
        long port = strtol(ps, NULL, 10);
        if (p == ps || p - ps > 5 || port < 1 || port > 65535) {
            snprintf(err, errlen, "bad port in '%s'", s);
            return -1;
        }
        snprintf(u->port, sizeof(u->port), "%ld", port);
    } else {
        strcpy(u->port, u->tls ? "443" : "80");
    }
    if (*p && *p != '/' && *p != '?') goto bad;
    if (strlen(p) >= sizeof(u->path) - 1) {
        snprintf(err, errlen, "URL too long: '%.40s...'", s);
        return -1;
    }
    snprintf(u->path, sizeof(u->path), "%s%s", *p == '/' ? "" : "/", p);
    for (const char *c = u->path; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f) goto bad;
    int def = !strcmp(u->port, u->tls ? "443" : "80");
    int v6 = strchr(u->host, ':') != NULL;
    snprintf(u->authority, sizeof(u->authority), "%s%s%s%s%s", v6 ? "[" : "", u->host,
             v6 ? "]" : "", def ? "" : ":", def ? "" : u->port);
    return mc_url_check_template(u->path, err, errlen);
bad:
    snprintf(err, errlen, "malformed URL '%s' (expected http://host[:port]/path)", s);
    return -1;
}

/* Parses "{rand:N}" at p; returns its length and N, 0 when not one. */
static size_t rand_placeholder(const char *p, uint64_t *n)
{
    if (strncmp(p, "{rand:", 6)) return 0;
    char *end;
    unsigned long long v = strtoull(p + 6, &end, 10);
    if (end == p + 6 || *end != '}' || v == 0) return 0;
    *n = v;
    return (size_t)(end - p) + 1;
}

int mc_url_check_template(const char *t, char *err, size_t errlen)
{
    for (const char *p = strchr(t, '{'); p; p = strchr(p + 1, '{')) {
        uint64_t n;
        if (!strncmp(p, "{seq}", 5) || rand_placeholder(p, &n)) continue;
        snprintf(err, errlen, "unknown placeholder at '%.20s' (use {seq} or {rand:N})", p);
        return -1;
    }
    return 0;
}

int mc_url_expand(const char *t, uint64_t seq, uint64_t *rng, char *out, size_t len)
{
    size_t o = 0;
    while (*t) {
        char num[24];
        const char *put = NULL;
        size_t skip = 1, plen = 1;
        uint64_t n;
        if (*t == '{' && !strncmp(t, "{seq}", 5)) {
            snprintf(num, sizeof(num), "%llu", (unsigned long long)seq);
            put = num;
            skip = 5;
        } else if (*t == '{' && (skip = rand_placeholder(t, &n)) > 0) {
            /* xorshift64* (Vigna 2016); modulo bias is negligible here. */
            *rng ^= *rng >> 12;
            *rng ^= *rng << 25;
            *rng ^= *rng >> 27;
            snprintf(num, sizeof(num), "%llu",
                     (unsigned long long)((*rng * 0x2545f4914f6cdd1dull) % n));
            put = num;
        } else {
            skip = 1;
        }
        if (put) {
            plen = strlen(put);
            if (o + plen >= len) return -1;
            memcpy(out + o, put, plen);
            o += plen;
        } else {
            if (o + 1 >= len) return -1;
            out[o++] = *t;
        }
        t += skip;
    }
    out[o] = 0;
    return (int)o;
}
