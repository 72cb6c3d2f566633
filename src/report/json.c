/* json.c - writes the result document (analysis/result.h) as JSON. */
#include <errno.h>
#include <stdio.h>

#include "report/result.h"

int mc_result_write(json_t *doc, FILE *f)
{
    errno = 0;
    if (json_dumpf(doc, f, JSON_INDENT(1) | JSON_REAL_PRECISION(10)) != 0)
        return -(errno ? errno : EIO);
    return 0;
}
