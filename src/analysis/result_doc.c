/* result_doc.c - what the builder and the readers of a result document
 * both need: control characters kept out of its strings, and the kind of a
 * finding from its code. */
#include <stdlib.h>
#include <string.h>

#include "analysis/findings.h"
#include "analysis/result.h"

/* Replaces control characters (C0 and DEL) in every string of the
 * document with '?': names come from the program (a Python type, a module
 * path) and from a file anyone may have written, and an ESC or a BEL must
 * not reach the terminal that shows them. Object keys are left alone
 * (renderers look up only the keys they know). */
void mc_result_sanitize(json_t *v)
{
    size_t i;
    const char *k;
    json_t *x;
    if (json_is_object(v)) {
        json_object_foreach (v, k, x)
            mc_result_sanitize(x);
    } else if (json_is_array(v)) {
        json_array_foreach (v, i, x)
            mc_result_sanitize(x);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v), j;
        for (j = 0; j < n; j++)
            if ((unsigned char)s[j] < 0x20 || s[j] == 0x7f) break;
        if (j == n) return;
        char *c = malloc(n ? n : 1);
        if (!c) return;
        for (j = 0; j < n; j++)
            c[j] = (unsigned char)s[j] < 0x20 || s[j] == 0x7f ? '?' : s[j];
        json_string_setn(v, c, n);
        free(c);
    }
}

int mc_result_finding_kind(json_t *f)
{
    int k = mc_finding_parse(json_string_value(json_object_get(f, "code")));
    return k >= 0 ? k : mc_finding_parse(json_string_value(json_object_get(f, "kind")));
}
