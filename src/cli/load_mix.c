/* load_mix.c - reading a request mix (--mix FILE, docs/load.md): a JSON
 * array of requests, each with its URL, method, headers, body and weight.
 * JSON because bodies and header values hold any byte a line format would
 * have to escape, and jansson is linked already. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/load_opts.h"

#define MIX_WEIGHT_MAX 1000000

/* Keeps p to be freed with l (mc_load_cli_free); returns p, or NULL (p
 * freed) without memory. */
static char *own(struct mc_load_cli *l, char *p)
{
    if (!p) return NULL;
    char **a = realloc(l->owned, (l->nowned + 1) * sizeof(*a));
    if (!a) {
        free(p);
        return NULL;
    }
    l->owned = a;
    l->owned[l->nowned++] = p;
    return p;
}

/* Adds header "name: value" to request q (its line made and owned by l).
 * Returns 0, or -1 after an error naming the file and entry. */
static int add_header(struct mc_load_cli *l, const char *path, size_t i, struct mc_load_req *q,
                      const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    if (!nl || strpbrk(name, ": \t\r\n") || strpbrk(value, "\r\n")) {
        mc_error("--mix %s: request %zu: bad header '%s' (a name without ':' or spaces, a value "
                 "on one line)",
                 path, i + 1, name);
        return -1;
    }
    if (q->nheaders >= MC_MAX_HEADERS) {
        mc_error("--mix %s: request %zu: at most %d headers", path, i + 1, MC_MAX_HEADERS);
        return -1;
    }
    char *h = own(l, malloc(nl + vl + 3));
    if (!h) {
        mc_error("--mix %s: out of memory", path);
        return -1;
    }
    memcpy(h, name, nl);
    memcpy(h + nl, ": ", 2);
    memcpy(h + nl + 2, value, vl + 1);
    l->mix_headers[i][q->nheaders++] = h;
    return 0;
}

/* Fills q from entry e (the i-th of the file at path, whose folder dir
 * body_file is relative to). Returns 0, or -1 after an error. */
static int read_entry(struct mc_load_cli *l, const char *path, const char *dir, size_t i, json_t *e,
                      struct mc_load_req *q)
{
    static const char *known[] = {"url",       "method", "headers", "body",
                                  "body_file", "weight", "name"};
    if (!json_is_object(e)) {
        mc_error("--mix %s: request %zu is not an object", path, i + 1);
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach (e, key, v) {
        size_t k = 0;
        while (k < sizeof(known) / sizeof(known[0]) && strcmp(key, known[k]))
            k++;
        if (k == sizeof(known) / sizeof(known[0])) {
            mc_error("--mix %s: request %zu: unknown key '%s' (url, method, headers, body, "
                     "body_file, weight, name)",
                     path, i + 1, key);
            return -1;
        }
    }
    q->url = json_string_value(json_object_get(e, "url"));
    if (!q->url) {
        mc_error("--mix %s: request %zu has no \"url\" string", path, i + 1);
        return -1;
    }
    if ((v = json_object_get(e, "method"))) {
        q->method = json_string_value(v);
        int ok = q->method && *q->method;
        for (const char *p = q->method; ok && *p; p++)
            ok = *p >= 'A' && *p <= 'Z';
        if (!ok) {
            mc_error("--mix %s: request %zu: \"method\" takes an upper-case token such as GET "
                     "or POST",
                     path, i + 1);
            return -1;
        }
    }
    if ((v = json_object_get(e, "name")) && !(q->name = json_string_value(v))) {
        mc_error("--mix %s: request %zu: \"name\" takes a string", path, i + 1);
        return -1;
    }
    q->weight = 1;
    if ((v = json_object_get(e, "weight"))) {
        json_int_t w = json_integer_value(v);
        if (!json_is_integer(v) || w < 1 || w > MIX_WEIGHT_MAX) {
            mc_error("--mix %s: request %zu: \"weight\" takes a whole number from 1 to %d", path,
                     i + 1, MIX_WEIGHT_MAX);
            return -1;
        }
        q->weight = (unsigned)w;
    }
    q->headers = l->mix_headers[i];
    if ((v = json_object_get(e, "headers"))) {
        json_t *h;
        if (json_is_object(v)) {
            json_object_foreach (v, key, h) {
                if (!json_is_string(h)) {
                    mc_error("--mix %s: request %zu: header '%s' takes a string", path, i + 1, key);
                    return -1;
                }
                if (add_header(l, path, i, q, key, json_string_value(h)) != 0) return -1;
            }
        } else if (json_is_array(v)) {
            size_t k;
            json_array_foreach (v, k, h) {
                const char *s = json_string_value(h), *colon = s ? strchr(s, ':') : NULL;
                if (!colon || colon == s) {
                    mc_error("--mix %s: request %zu: headers take 'Name: value' strings", path,
                             i + 1);
                    return -1;
                }
                char name[128];
                size_t nl = (size_t)(colon - s);
                if (nl >= sizeof(name)) nl = sizeof(name) - 1;
                memcpy(name, s, nl);
                name[nl] = 0;
                const char *val = colon + 1;
                while (*val == ' ')
                    val++;
                if (add_header(l, path, i, q, name, val) != 0) return -1;
            }
        } else {
            mc_error("--mix %s: request %zu: \"headers\" takes an object or an array of "
                     "'Name: value' strings",
                     path, i + 1);
            return -1;
        }
    }
    json_t *b = json_object_get(e, "body"), *bf = json_object_get(e, "body_file");
    if (b && bf) {
        mc_error("--mix %s: request %zu: give \"body\" or \"body_file\", not both", path, i + 1);
        return -1;
    }
    if (b) {
        if (!json_is_string(b)) {
            mc_error("--mix %s: request %zu: \"body\" takes a string", path, i + 1);
            return -1;
        }
        q->body = json_string_value(b);
        q->body_len = json_string_length(b);
    } else if (bf) {
        const char *f = json_string_value(bf);
        if (!f || !*f) {
            mc_error("--mix %s: request %zu: \"body_file\" takes a path", path, i + 1);
            return -1;
        }
        char full[PATH_MAX];
        if (f[0] == '/')
            snprintf(full, sizeof(full), "%s", f);
        else
            snprintf(full, sizeof(full), "%s/%s", dir, f);
        size_t len;
        char *data = own(l, mc_load_cli_slurp(full, &len));
        if (!data) {
            mc_error("--mix %s: request %zu: cannot read body_file '%s': %s", path, i + 1, full,
                     strerror(errno ? errno : ENOMEM));
            return -1;
        }
        q->body = data;
        q->body_len = len;
    }
    return 0;
}

int mc_load_cli_read_mix(struct mc_load_cli *l, const char *path)
{
    if (l->o.nmix) {
        mc_error("--mix is given once");
        return -1;
    }
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (je.line <= 0)
            mc_error("cannot read --mix file '%s': %s", path, je.text);
        else
            mc_error("--mix %s:%d: %s", path, je.line, je.text);
        return -1;
    }
    l->mix_json = root;
    size_t n = json_array_size(root);
    if (!json_is_array(root) || n == 0) {
        mc_error("--mix %s: expected a JSON array of requests, e.g. [{\"url\": \"http://...\", "
                 "\"weight\": 9}]",
                 path);
        return -1;
    }
    if (n > MC_LOAD_KINDS_MAX) {
        mc_error("--mix %s: at most %d requests (got %zu)", path, MC_LOAD_KINDS_MAX, n);
        return -1;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof(dir), ".");
    for (size_t i = 0; i < n; i++)
        if (read_entry(l, path, dir, i, json_array_get(root, i), &l->mix[i]) != 0) return -1;
    /* The URLs stand as the run's too: they are checked, resolved and
     * waited for as any other (run.c). */
    for (size_t i = 0; i < n; i++)
        l->urls[i] = l->mix[i].url;
    l->o.nurls = n;
    l->o.mix = l->mix;
    l->o.nmix = n;
    return 0;
}
