/* wrap.c - keeps terminal output inside a fixed width. The renderers write
 * their lines whole; this folds any line wider than the terminal at a space,
 * continuing it four columns deeper than it started, so a long C++ name or
 * path never runs past the edge. ANSI colour sequences take no width. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/result.h"

/* Length in bytes of an ESC [ ... m colour sequence at s, else 0. */
static size_t sgr_len(const char *s, size_t len)
{
    if (len < 2 || s[0] != '\033' || s[1] != '[') return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] == 'm') return i + 1;
    return len;
}

/* Scans the part of s[0..len) that fits in room columns (colour sequences
 * take none, a UTF-8 character one). Returns the bytes that fit; *space is
 * the last space among them after skip bytes (0: none). One pass: a line
 * of any length folds in linear time. */
static size_t fit(const char *s, size_t len, int room, size_t skip, size_t *space)
{
    int w = 0;
    size_t i = 0;
    *space = 0;
    while (i < len) {
        size_t q = sgr_len(s + i, len - i);
        if (q) {
            i += q;
            continue;
        }
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (w == room) break;
            w++;
        }
        if (s[i] == ' ' && i > skip) *space = i;
        i++;
    }
    return i;
}

/* Writes one line (without its newline) folded to width. */
static void wrap_line(const char *s, size_t len, FILE *out, int width)
{
    size_t indent = 0;
    while (indent < len && s[indent] == ' ')
        indent++;
    int first = 1;
    while (len > 0) {
        int lead = first ? 0 : (int)indent + 4;
        size_t space, n = fit(s, len, width - lead, first ? indent : 0, &space);
        if (n >= len) {
            fprintf(out, "%*s%.*s\n", lead, "", (int)len, s);
            return;
        }
        /* Cut at the last space that keeps the part inside the width (past
         * the indent, so a part always carries text); one word wider than
         * the line is cut where the width ends. */
        size_t cut = space ? space : (n ? n : 1);
        size_t end = cut;
        while (end > 0 && s[end - 1] == ' ')
            end--;
        fprintf(out, "%*s%.*s\n", lead, "", (int)end, s);
        while (cut < len && s[cut] == ' ')
            cut++;
        s += cut;
        len -= cut;
        first = 0;
    }
}

void mc_text_wrap(const char *buf, size_t len, FILE *out, int width)
{
    while (len > 0) {
        const char *nl = memchr(buf, '\n', len);
        size_t l = nl ? (size_t)(nl - buf) : len;
        if (l == 0)
            fputc('\n', out);
        else
            wrap_line(buf, l, out, width);
        if (!nl) break;
        buf += l + 1;
        len -= l + 1;
    }
}

int mc_text_begin(struct mc_text_buf *tb)
{
    tb->buf = NULL;
    tb->len = 0;
    tb->f = open_memstream(&tb->buf, &tb->len);
    return tb->f ? 0 : -1;
}

void mc_text_end(struct mc_text_buf *tb, FILE *out)
{
    if (!tb->f) return;
    fclose(tb->f);
    if (tb->buf) mc_text_wrap(tb->buf, tb->len, out, MC_TEXT_WIDTH);
    free(tb->buf);
    tb->f = NULL;
    tb->buf = NULL;
}
