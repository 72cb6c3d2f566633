/* load_opts.c - parsing of the load options (see load_opts.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/load_opts.h"
#include "common/util.h"

void mc_load_cli_init(struct mc_load_cli *l)
{
    memset(l, 0, sizeof(*l));
    l->o.urls = l->urls;
    l->o.headers = l->headers;
    l->o.proto = MC_PROTO_H1;
    l->protos = MC_PROTO_H1;
    l->o.conns = 16;
    l->o.streams = 1;
    l->o.timeout = 10;
}

char *mc_load_cli_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap + 1);
    size_t r;
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(b, cap * 2 + 1);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!b || bad) {
        free(b);
        return NULL;
    }
    b[n] = 0;
    *len = n;
    return b;
}

int mc_load_cli_add_url(struct mc_load_cli *l, const char *url)
{
    if (l->o.nurls >= MC_MAX_URLS) {
        mc_error("at most %d URLs", MC_MAX_URLS);
        return -1;
    }
    l->urls[l->o.nurls++] = url;
    l->user_urls++;
    return 0;
}

static int read_urls(struct mc_load_cli *l, const char *path)
{
    size_t len;
    l->url_file_buf = mc_load_cli_slurp(path, &len);
    if (!l->url_file_buf) {
        mc_error("cannot read --urls file '%s': %s", path, strerror(errno));
        return -1;
    }
    for (char *line = strtok(l->url_file_buf, "\r\n"); line; line = strtok(NULL, "\r\n")) {
        while (*line == ' ' || *line == '\t')
            line++;
        if (!*line || *line == '#') continue;
        if (mc_load_cli_add_url(l, line) != 0) return -1;
    }
    return 0;
}

int mc_load_cli_option(struct mc_load_cli *l, int c, const char *arg)
{
    uint64_t v;
    switch (c) {
    case 'c':
        if (mc_parse_u64(arg, 1, 10000, &v)) goto bad_num;
        l->o.conns = (int)v;
        return 1;
    case 'm':
        if (mc_parse_u64(arg, 1, 256, &v)) goto bad_num;
        l->o.streams = (int)v;
        l->streams_set = 1;
        return 1;
    case 1001: {
        char *end;
        errno = 0;
        double r = strtod(arg, &end);
        if (errno || *end || !(r > 0) || r > 1e7) {
            mc_error("--rate takes requests per second (0 < rate <= 1e7), not '%s'", arg);
            return -1;
        }
        l->o.rate = r;
        return 1;
    }
    case 1002: {
        l->protos = 0;
        char tmp[32];
        snprintf(tmp, sizeof(tmp), "%s", arg);
        for (char *t = strtok(tmp, ","); t; t = strtok(NULL, ",")) {
            if (!strcmp(t, "h1") || !strcmp(t, "http/1.1"))
                l->protos |= MC_PROTO_H1;
            else if (!strcmp(t, "h2"))
                l->protos |= MC_PROTO_H2;
            else {
                mc_error("--proto takes h1, h2 or h1,h2, not '%s'", arg);
                return -1;
            }
        }
        if (!l->protos) {
            mc_error("--proto takes h1, h2 or h1,h2, not '%s'", arg);
            return -1;
        }
        l->o.proto = (l->protos & MC_PROTO_H1) ? MC_PROTO_H1 : MC_PROTO_H2;
        return 1;
    }
    case 1003:
        l->o.new_conn = 1;
        return 1;
    case 'X':
        for (const char *p = arg; *p; p++)
            if (*p < 'A' || *p > 'Z') {
                mc_error("--method takes an upper-case token such as GET or POST, not '%s'", arg);
                return -1;
            }
        if (!*arg) {
            mc_error("--method is empty");
            return -1;
        }
        l->o.method = arg;
        return 1;
    case 'H':
        if (l->o.nheaders >= MC_MAX_HEADERS) {
            mc_error("at most %d --header options", MC_MAX_HEADERS);
            return -1;
        }
        if (!strchr(arg, ':') || arg[0] == ':' || strpbrk(arg, "\r\n")) {
            mc_error("--header takes 'Name: value', not '%s'", arg);
            return -1;
        }
        l->headers[l->o.nheaders++] = arg;
        return 1;
    case 1004: {
        size_t len;
        free(l->body_buf);
        l->body_buf = mc_load_cli_slurp(arg, &len);
        if (!l->body_buf) {
            mc_error("cannot read --body-file '%s': %s", arg, strerror(errno));
            return -1;
        }
        l->o.body = l->body_buf;
        l->o.body_len = len;
        return 1;
    }
    case 1005:
        return read_urls(l, arg) == 0 ? 1 : -1;
    case 'k':
        l->o.insecure = 1;
        return 1;
    case 1006:
        if (mc_parse_duration(arg, &l->o.timeout) || l->o.timeout <= 0) {
            mc_error("--timeout takes a duration such as 2s or 500ms, not '%s'", arg);
            return -1;
        }
        return 1;
    case 1007:
        return mc_load_cli_add_url(l, arg) == 0 ? 1 : -1;
    case 1008:
        return mc_load_cli_read_mix(l, arg) == 0 ? 1 : -1;
    default:
        return 0;
    }
bad_num:
    mc_error("option -%c: out of range or not a number: '%s'", c, arg);
    return -1;
}

int mc_load_cli_finish(struct mc_load_cli *l)
{
    if (l->o.nmix && (l->user_urls || l->o.method || l->o.nheaders || l->o.body)) {
        mc_error("--mix gives every request's URL, method, headers and body: leave out URLs, "
                 "--url, --urls, -X, -H and --body-file");
        return -1;
    }
    if (!l->o.method) l->o.method = l->o.body ? "POST" : "GET";
    if (!l->streams_set) l->o.streams = (l->protos & MC_PROTO_H2) ? 10 : 1;
    return 0;
}

void mc_load_cli_free(struct mc_load_cli *l)
{
    free(l->url_file_buf);
    free(l->body_buf);
    for (size_t i = 0; i < l->nowned; i++)
        free(l->owned[i]);
    free(l->owned);
    json_decref(l->mix_json);
}

void mc_load_cli_describe(const struct mc_load_cli *l, enum mc_proto p, char *buf, size_t len)
{
    char mix[48] = "";
    if (l->o.nmix) snprintf(mix, sizeof(mix), ", a mix of %zu requests", l->o.nmix);
    snprintf(buf, len, "%s (%s%s, %d connection%s%s", l->urls[0], p == MC_PROTO_H2 ? "h2" : "h1",
             mix, l->o.conns, l->o.conns == 1 ? "" : "s", l->o.new_conn ? ", new per request" : "");
    size_t n = strlen(buf);
    if (p == MC_PROTO_H2)
        n += (size_t)snprintf(buf + n, len - n, ", %d streams each", l->o.streams);
    if (l->o.rate > 0) n += (size_t)snprintf(buf + n, len - n, ", %.0f req/s", l->o.rate);
    snprintf(buf + n, len - n, ")");
}
