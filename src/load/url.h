/* url.h - the URLs the load driver requests: parsing, and the placeholders
 * that make each request's target differ ({seq}, {rand:N}). */
#ifndef MC_URL_H
#define MC_URL_H

#include <stddef.h>
#include <stdint.h>

struct mc_url {
    int tls;        /* https */
    char host[256]; /* without brackets for IPv6 */
    char port[8];   /* decimal */
    char authority[272];
    char path[2048]; /* path and query, "/" at least; may hold placeholders */
};

/* Parses http://host[:port]/path?query or https://... Returns 0, or -1 with
 * a one-line reason in err. */
int mc_url_parse(const char *s, struct mc_url *u, char *err, size_t errlen);
/* Expands {seq} (seq) and {rand:N} (below N, from *rng) in tmpl into out.
 * Returns the length, or -1 when out is too small. */
int mc_url_expand(const char *tmpl, uint64_t seq, uint64_t *rng, char *out, size_t len);
/* Checks a template's placeholders. Returns 0, or -1 with a reason. */
int mc_url_check_template(const char *tmpl, char *err, size_t errlen);

#endif
