/* folded.c - the growth of a run as folded stacks (growth.folded): one
 * line per stack that grew, its frames from the outermost caller down to
 * the allocation, separated by ';', then the bytes it grew between the
 * first and the last sample. Brendan Gregg's flamegraph.pl and speedscope
 * read this format as it is; the first frame names the process, so one
 * file holds the whole tree. */
#include <stdio.h>
#include <string.h>

#include "report/result.h"

/* Writes s with the characters the format reserves (';' separates frames,
 * a newline ends the record) replaced. */
static void put_name(FILE *out, const char *s)
{
    for (; *s; s++)
        fputc(*s == ';' ? ':' : *s == '\n' ? ' ' : *s, out);
}

void mc_report_frame_name(json_t *f, char *buf, size_t len)
{
    const char *fn = json_string_value(json_object_get(f, "function"));
    const char *mod = json_string_value(json_object_get(f, "module"));
    if (fn && *fn && strcmp(fn, "??"))
        snprintf(buf, len, "%s", fn);
    else
        snprintf(buf, len, "[%s]", mod && *mod ? mod : "unknown");
}

int mc_report_growth(json_t *doc,
                     void (*fn)(void *ctx, const char *proc, json_t *frames, long long grew),
                     void *ctx)
{
    json_t *p, *s;
    size_t i, k;
    int n = 0;
    json_array_foreach (json_object_get(doc, "processes"), i, p) {
        const char *exe = json_string_value(json_object_get(p, "exe")) ?: "?";
        const char *base = strrchr(exe, '/');
        char name[512];
        snprintf(name, sizeof(name), "%s (pid %lld)", base ? base + 1 : exe,
                 (long long)json_integer_value(json_object_get(p, "pid")));
        json_array_foreach (json_object_get(p, "stacks"), k, s) {
            json_t *bytes = json_object_get(json_object_get(s, "series"), "bytes");
            size_t len = json_array_size(bytes);
            if (len < 1) continue;
            json_int_t grew = json_integer_value(json_array_get(bytes, len - 1)) -
                              json_integer_value(json_array_get(bytes, 0));
            if (grew <= 0) continue;
            fn(ctx, name, json_object_get(s, "frames"), (long long)grew);
            n++;
        }
    }
    return n;
}

/* One line of the folded file. */
static void folded_line(void *ctx, const char *proc, json_t *frames, long long grew)
{
    FILE *out = ctx;
    put_name(out, proc);
    char name[512];
    for (size_t f = json_array_size(frames); f-- > 0;) {
        fputc(';', out);
        mc_report_frame_name(json_array_get(frames, f), name, sizeof(name));
        put_name(out, name);
    }
    fprintf(out, " %lld\n", grew);
}

int mc_report_folded(json_t *doc, FILE *out)
{
    return mc_report_growth(doc, folded_line, out);
}
