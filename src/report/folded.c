/* folded.c - the growth of a run as folded stacks (growth.folded): one
 * line per stack that grew, its frames from the outermost caller down to
 * the allocation, separated by ';', then the bytes it grew between the
 * first and the last sample. Brendan Gregg's flamegraph.pl and speedscope
 * read this format as it is; the first frame names the process, so one
 * file holds the whole tree. */
#include <string.h>

#include "report/result.h"

/* Writes s with the characters the format reserves (';' separates frames,
 * a newline ends the record) replaced. */
static void put_name(FILE *out, const char *s)
{
    for (; *s; s++)
        fputc(*s == ';' ? ':' : *s == '\n' ? ' ' : *s, out);
}

/* A frame's name: its function, or [module] when it has no symbol. */
static void put_frame(FILE *out, json_t *f)
{
    const char *fn = json_string_value(json_object_get(f, "function"));
    if (fn && strcmp(fn, "??")) {
        put_name(out, fn);
        return;
    }
    const char *mod = json_string_value(json_object_get(f, "module"));
    fputc('[', out);
    put_name(out, mod && *mod ? mod : "unknown");
    fputc(']', out);
}

int mc_report_folded(json_t *doc, FILE *out)
{
    json_t *p, *s;
    size_t i, k;
    int lines = 0;
    json_array_foreach (json_object_get(doc, "processes"), i, p) {
        json_array_foreach (json_object_get(p, "stacks"), k, s) {
            json_t *bytes = json_object_get(json_object_get(s, "series"), "bytes");
            size_t n = json_array_size(bytes);
            if (n < 1) continue;
            json_int_t grew = json_integer_value(json_array_get(bytes, n - 1)) -
                              json_integer_value(json_array_get(bytes, 0));
            if (grew <= 0) continue;
            const char *exe = json_string_value(json_object_get(p, "exe")) ?: "?";
            const char *base = strrchr(exe, '/');
            put_name(out, base ? base + 1 : exe);
            fprintf(out, " (pid %lld)", (long long)json_integer_value(json_object_get(p, "pid")));
            json_t *frames = json_object_get(s, "frames");
            for (size_t f = json_array_size(frames); f-- > 0;) {
                fputc(';', out);
                put_frame(out, json_array_get(frames, f));
            }
            fprintf(out, " %lld\n", (long long)grew);
            lines++;
        }
    }
    return lines;
}
