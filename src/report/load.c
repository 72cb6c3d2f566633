/* load.c - reads a saved result document and checks it is one this
 * memcreep can render: the schema, a version it knows, and the parts every
 * renderer expects. Renderers then treat every other field as optional,
 * so a hand-edited or truncated-but-valid file never crashes them (the
 * reader and the renderers are fuzzed together: tests/fuzz). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/findings.h"
#include "report/result.h"

/* Version 1 named findings by their titles only: each gets the code and
 * severity its title stands for, so that renderers read one form, and the
 * document is then one of this version (what else version 2 added is
 * optional). */
static void upgrade(json_t *doc)
{
    json_t *f;
    size_t i;
    json_object_set_new(doc, "version", json_integer(MC_RESULT_VERSION));
    json_array_foreach (json_object_get(json_object_get(doc, "summary"), "findings"), i, f) {
        if (json_object_get(f, "code")) continue;
        int k = mc_finding_parse(json_string_value(json_object_get(f, "kind")));
        if (k < 0) continue;
        json_object_set_new(f, "code", json_string(mc_findings[k].code));
        json_object_set_new(f, "severity", json_string(mc_severity_name(mc_findings[k].severity)));
    }
}

/* Checks a parsed document; on failure decrefs it, fills err (naming it
 * by name) and returns NULL. */
static json_t *check(json_t *doc, const char *name, char *err, size_t errlen)
{
    const char *schema = json_string_value(json_object_get(doc, "schema"));
    json_t *ver = json_object_get(doc, "version");
    if (!schema || strcmp(schema, MC_RESULT_SCHEMA) || !json_is_integer(ver)) {
        snprintf(err, errlen, "%s: not a memcreep result (no schema \"%s\")", name,
                 MC_RESULT_SCHEMA);
        goto fail;
    }
    if (json_integer_value(ver) > MC_RESULT_VERSION || json_integer_value(ver) < 1) {
        snprintf(err, errlen, "%s: result version %lld is not supported (this memcreep reads %d)",
                 name, (long long)json_integer_value(ver), MC_RESULT_VERSION);
        goto fail;
    }
    if (!json_is_array(json_object_get(doc, "processes")) ||
        !json_is_object(json_object_get(doc, "summary")) ||
        !json_is_object(json_object_get(doc, "run"))) {
        snprintf(err, errlen, "%s: broken memcreep result (missing run, processes or summary)",
                 name);
        goto fail;
    }
    upgrade(doc);
    mc_result_sanitize(doc);
    return doc;
fail:
    json_decref(doc);
    return NULL;
}

json_t *mc_result_parse(const char *buf, size_t len, const char *name, char *err, size_t errlen)
{
    json_error_t je;
    json_t *doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        snprintf(err, errlen, "%s: not valid JSON (%s, line %d)", name, je.text, je.line);
        return NULL;
    }
    return check(doc, name, err, errlen);
}

json_t *mc_result_load(const char *path, char *err, size_t errlen)
{
    json_error_t je;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        snprintf(err, errlen, "%s: not a readable JSON file (%s, line %d)", path, je.text, je.line);
        return NULL;
    }
    return check(doc, path, err, errlen);
}

const char *mc_result_verdict(json_t *doc)
{
    const char *v = json_string_value(json_object_get(json_object_get(doc, "summary"), "verdict"));
    return v ? v : "UNKNOWN";
}
