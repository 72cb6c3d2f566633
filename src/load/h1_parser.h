/* h1_parser.h - incremental HTTP/1.1 response parser for the load driver:
 * status line, headers (Content-Length, Transfer-Encoding: chunked,
 * Connection: close), body by length, chunks or until close. Bytes can
 * arrive in any pieces; nothing is copied but the current line. Fuzzed by
 * tests/fuzz/fuzz_h1_parser.c. */
#ifndef MC_H1_PARSER_H
#define MC_H1_PARSER_H

#include <stddef.h>
#include <stdint.h>

enum mc_h1_state {
    MC_H1_STATUS,
    MC_H1_HEADERS,
    MC_H1_BODY_LEN,
    MC_H1_CHUNK_SIZE,
    MC_H1_CHUNK_DATA,
    MC_H1_CHUNK_END,
    MC_H1_TRAILERS,
    MC_H1_BODY_EOF,
    MC_H1_DONE,
    MC_H1_ERROR,
};

#define MC_H1_LINE_MAX    8192
#define MC_H1_HEADERS_MAX 65536

struct mc_h1 {
    enum mc_h1_state state;
    int status;
    int head; /* response to HEAD: no body whatever the headers */
    int chunked;
    int close; /* Connection: close, or HTTP/1.0 without keep-alive */
    int has_length;
    uint64_t remaining; /* body or chunk bytes still to come */
    uint64_t body_bytes;
    size_t header_bytes;
    size_t line_len;
    const char *error; /* static string when state is MC_H1_ERROR */
    char line[MC_H1_LINE_MAX];
};

/* Prepares for the next response; head: the request was HEAD. */
void mc_h1_begin(struct mc_h1 *p, int head);
/* Feeds len bytes. Returns how many were consumed: fewer than len only
 * when the response completed (state MC_H1_DONE; the rest belongs to the
 * next response) or on error (MC_H1_ERROR, error set). */
size_t mc_h1_feed(struct mc_h1 *p, const char *buf, size_t len);
/* The peer closed the connection: completes a body read until close,
 * otherwise an error. */
void mc_h1_eof(struct mc_h1 *p);

#endif
