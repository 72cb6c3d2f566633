/* load_opts.h - the load options shared by `memcreep load` and
 * `memcreep run --url`: parsing them and the storage behind them. */
#ifndef MC_LOAD_OPTS_H
#define MC_LOAD_OPTS_H

#include <getopt.h>
#include <jansson.h>

#include "load/driver.h"

#define MC_MAX_HEADERS 32
#define MC_MAX_URLS    4096

struct mc_load_cli {
    struct mc_load_opts o;
    const char *urls[MC_MAX_URLS];
    char *url_file_buf; /* owns the strings read from --urls */
    const char *headers[MC_MAX_HEADERS];
    char *body_buf;
    int streams_set;
    int protos;       /* bit MC_PROTO_H1 / MC_PROTO_H2: --proto may list both */
    size_t user_urls; /* URLs given as arguments, --url or --urls */
    /* --mix FILE (load_mix.c): its requests, the parsed file their strings
     * point into, and what was made for them (header lines, bodies). */
    struct mc_load_req mix[MC_LOAD_KINDS_MAX];
    const char *mix_headers[MC_LOAD_KINDS_MAX][MC_MAX_HEADERS];
    json_t *mix_json;
    char **owned;
    size_t nowned;
};

/* Long options of the load driver, for getopt_long tables, and their
 * short letters ("c:m:H:X:k"). */
#define MC_LOAD_LONGOPTS                                                                           \
    {"connections", required_argument, 0, 'c'}, {"streams", required_argument, 0, 'm'},            \
        {"rate", required_argument, 0, 1001}, {"proto", required_argument, 0, 1002},               \
        {"new-conn", no_argument, 0, 1003}, {"method", required_argument, 0, 'X'},                 \
        {"header", required_argument, 0, 'H'}, {"body-file", required_argument, 0, 1004},          \
        {"urls", required_argument, 0, 1005}, {"insecure", no_argument, 0, 'k'},                   \
        {"timeout", required_argument, 0, 1006}, {"url", required_argument, 0, 1007},              \
    {                                                                                              \
        "mix", required_argument, 0, 1008                                                          \
    }

/* Sets the defaults. */
void mc_load_cli_init(struct mc_load_cli *l);
/* Handles one option of MC_LOAD_LONGOPTS. Returns 1 when it was one (0
 * when not, -1 after printing an error for a bad value). */
int mc_load_cli_option(struct mc_load_cli *l, int c, const char *arg);
/* Adds a URL given as an argument. Returns 0, or -1 after an error. */
int mc_load_cli_add_url(struct mc_load_cli *l, const char *url);
/* Reads a whole file: a NUL-terminated buffer the caller frees, its
 * length in *len; NULL with errno set when it cannot. */
char *mc_load_cli_slurp(const char *path, size_t *len);
/* Reads a request mix (--mix FILE, docs/load.md) into l. Returns 0, or
 * -1 after printing a one-line error. */
int mc_load_cli_read_mix(struct mc_load_cli *l, const char *path);
/* Final checks and defaults that depend on other options: 0, or -1
 * after printing an error. */
int mc_load_cli_finish(struct mc_load_cli *l);
void mc_load_cli_free(struct mc_load_cli *l);
/* "h1, 16 connections" and so on, for headings. */
void mc_load_cli_describe(const struct mc_load_cli *l, enum mc_proto p, char *buf, size_t len);

#endif
