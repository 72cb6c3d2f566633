/* fuzz_result.c - libFuzzer target for the result reader and every
 * renderer of a result (text, HTML, folded stacks, pprof, diff in text and
 * HTML, side by side): a
 * document the reader accepts must render without reading or writing out
 * of bounds, whatever its fields hold. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "report/result.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (!sink) sink = fopen("/dev/null", "w");
    char err[256];
    json_t *doc = mc_result_parse((const char *)data, size, "fuzz", err, sizeof(err));
    if (!doc) return 0;
    mc_report_text(doc, sink, 1, 0);
    mc_report_text(doc, sink, 0, 3);
    mc_report_folded(doc, sink);
    mc_report_diff(doc, doc, "a", "b", sink);
    json_t *two[2] = {doc, doc};
    mc_report_compare(two, 2, sink, 0);
    mc_report_html(&doc, 1, sink, 0);
    mc_report_html(two, 2, sink, 3);
    mc_report_pprof(doc, sink);
    mc_report_diff_html(doc, doc, "a", "b", sink);
    mc_result_verdict(doc);
    json_decref(doc);
    return 0;
}
