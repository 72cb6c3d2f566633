/* flame.c - the flame graph of what grew, as inline SVG: the same stacks
 * and numbers as growth.folded (folded.c) merged into a tree, the whole run
 * at the bottom, then each process, then its stacks from the outermost
 * caller up to the allocation. A box's width is the bytes that grew under
 * it; hovering shows its name, bytes and share. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "report/html.h"
#include "report/result.h"

#define ROW    17 /* pixels per level */
#define MARGIN 6
/* Frames drawn per stack at most (memcreep keeps 256): a result file with
 * more has its outermost callers folded into one box, so the tree, and the
 * recursion over it, stay this deep. */
#define MAX_LEVELS 256

struct node {
    char *name;
    double value;
    struct node **kids;
    size_t nkids, cap;
};

/* The child of n named name, made when missing. NULL on allocation
 * failure. */
static struct node *child(struct node *n, const char *name)
{
    for (size_t i = 0; i < n->nkids; i++)
        if (!strcmp(n->kids[i]->name, name)) return n->kids[i];
    if (n->nkids == n->cap) {
        size_t cap = n->cap ? 2 * n->cap : 4;
        struct node **k = realloc(n->kids, cap * sizeof(*k));
        if (!k) return NULL;
        n->kids = k;
        n->cap = cap;
    }
    struct node *c = calloc(1, sizeof(*c));
    if (!c || !(c->name = strdup(name))) {
        free(c);
        return NULL;
    }
    n->kids[n->nkids++] = c;
    return c;
}

static void free_tree(struct node *n)
{
    for (size_t i = 0; i < n->nkids; i++)
        free_tree(n->kids[i]);
    free(n->kids);
    free(n->name);
    free(n);
}

static int depth_of(const struct node *n)
{
    int d = 0;
    for (size_t i = 0; i < n->nkids; i++) {
        int k = depth_of(n->kids[i]);
        if (k > d) d = k;
    }
    return d + 1;
}

/* A stable warm colour for a name (FNV-1a hash), as flame graphs are
 * coloured: the hue tells boxes apart, it means nothing else. */
static void colour(const char *name, char *buf, size_t len)
{
    uint32_t h = 2166136261u;
    for (; *name; name++)
        h = (h ^ (uint8_t)*name) * 16777619u;
    snprintf(buf, len, "rgb(%u,%u,%u)", 205 + h % 50, 90 + (h >> 8) % 110, 40 + (h >> 16) % 40);
}

static void draw(FILE *out, const struct node *n, double x, int level, int height, double scale,
                 double total)
{
    double w = n->value * scale;
    if (w < 0.5) return;
    double y = height - MARGIN - (level + 1) * ROW;
    char fill[32], val[32];
    colour(n->name, fill, sizeof(fill));
    mc_fmt_bytes(val, sizeof(val), n->value, 0);
    fputs("<g><title>", out);
    mc_html_esc(out, n->name);
    fprintf(out,
            " — %s (%.1f%%)</title><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" "
            "rx=\"2\" fill=\"%s\"/>",
            val, 100 * n->value / total, x, y, w, ROW - 1, fill);
    size_t fit = w > 24 ? (size_t)((w - 6) / 7) : 0; /* 11px monospace: ~7px a character */
    if (fit >= 3) {
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">", x + 3, y + ROW - 5);
        size_t len = strlen(n->name);
        if (len <= fit) {
            mc_html_esc(out, n->name);
        } else {
            char cut[512];
            snprintf(cut, sizeof(cut), "%.*s..", (int)(fit - 2 < 500 ? fit - 2 : 500), n->name);
            mc_html_esc(out, cut);
        }
        fputs("</text>", out);
    }
    fputs("</g>\n", out);
    for (size_t i = 0; i < n->nkids; i++) {
        draw(out, n->kids[i], x, level + 1, height, scale, total);
        x += n->kids[i]->value * scale;
    }
}

/* Adds one stack's growth along its path from the root. */
static void add_stack(void *ctx, const char *proc, json_t *frames, long long grew)
{
    struct node *root = ctx, *at = child(root, proc);
    char name[512];
    root->value += (double)grew;
    size_t nf = json_array_size(frames);
    if (at && nf > MAX_LEVELS) {
        snprintf(name, sizeof(name), "[%zu outer frames]", nf - MAX_LEVELS);
        at->value += (double)grew;
        at = child(at, name);
        nf = MAX_LEVELS;
    }
    for (size_t f = nf; at && f-- > 0;) {
        at->value += (double)grew;
        mc_report_frame_name(json_array_get(frames, f), name, sizeof(name));
        at = child(at, name);
    }
    if (at) at->value += (double)grew;
}

int mc_svg_flame(FILE *out, json_t *doc, int width)
{
    struct node *root = calloc(1, sizeof(*root));
    if (!root || !(root->name = strdup("all"))) {
        free(root);
        return 0;
    }
    mc_report_growth(doc, add_stack, root);
    int drawn = root->value > 0;
    if (drawn) {
        int height = depth_of(root) * ROW + 2 * MARGIN;
        fprintf(out,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"flame\" width=\"%d\" "
                "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
                width, height, width, height);
        draw(out, root, MARGIN, 0, height, (width - 2 * MARGIN) / root->value, root->value);
        fputs("</svg>\n", out);
    }
    free_tree(root);
    return drawn;
}
