/* wrap.c - keeps terminal output inside a fixed width. The renderers write
 * their lines whole; this folds any line wider than the terminal at a space,
 * continuing it four columns deeper than it started, so a long C++ name or
 * path never runs past the edge. ANSI colour sequences take no width. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/result.h"

/* Visible columns of s[0..len): bytes outside ESC [ ... m sequences, each
 * UTF-8 character counted once. */
static int visible(const char *s, size_t len)
{
    int w = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\033') {
            while (i < len && s[i] != 'm')
                i++;
            continue;
        }
        if (((unsigned char)s[i] & 0xC0) != 0x80) w++;
    }
    return w;
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
        if (lead + visible(s, len) <= width) {
            fprintf(out, "%*s%.*s\n", lead, "", (int)len, s);
            return;
        }
        /* The last space that keeps the part inside the width; past the
         * indent, so a part always carries text. */
        size_t cut = 0, i = first ? indent : 0;
        for (; i < len && lead + visible(s, i) < width; i++)
            if (s[i] == ' ' && i > (first ? indent : 0)) cut = i;
        if (!cut) cut = i; /* one word wider than the line: cut it */
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
