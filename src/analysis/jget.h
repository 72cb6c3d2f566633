/* jget.h - reading a field of the result document in the renderers: a
 * missing or mistyped field reads as 0 or "", so a damaged document renders
 * with blanks rather than failing (the reader has checked its shape). */
#ifndef MC_REPORT_JGET_H
#define MC_REPORT_JGET_H

#include <jansson.h>

static inline double mc_jnum(json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

static inline const char *mc_jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

#endif
