/* fuzz_h1_parser.c - libFuzzer target for the HTTP/1.1 response parser.
 * The first byte of the input chooses how the rest is cut into pieces and
 * whether the request was HEAD; the rest is fed as a stream of responses
 * (pipelined), then end of stream. The parser must never read or write out
 * of bounds, never loop, and keep its invariants. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "load/h1_parser.h"

static struct mc_h1 p;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t step = (data[0] & 0x3f) + 1;
    int head = data[0] >> 7;
    data++;
    size--;
    mc_h1_begin(&p, head);
    size_t off = 0;
    int responses = 0;
    while (off < size) {
        size_t n = size - off < step ? size - off : step;
        size_t used = mc_h1_feed(&p, (const char *)data + off, n);
        if (used > n) abort();
        off += used;
        if (p.state == MC_H1_ERROR) {
            if (!p.error) abort();
            return 0;
        }
        if (p.state == MC_H1_DONE) {
            if (p.status < 200 || p.status > 999) abort();
            if (++responses > 100000) abort();
            mc_h1_begin(&p, head);
        } else if (used < n) {
            abort(); /* only a finished response may leave bytes */
        }
    }
    mc_h1_eof(&p);
    return 0;
}
