/* pprof.c - the growth of a run as a pprof profile (growth.pb.gz): the
 * profile.proto message of github.com/google/pprof, gzip-compressed, with
 * four sample types per stack: bytes and objects grown between the first
 * and the last sample, and bytes and objects live at the end. `go tool
 * pprof`, pprof's web UI and the profilers that import pprof read it.
 *
 * The protobuf encoding is written here rather than generated with
 * protobuf-c: the message is write-only, six kinds of records, and its wire
 * format (varints, tags, length-delimited fields) fits in a page, while the
 * generator would add a build step and a library for it. Field numbers are
 * those of profile.proto. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "analysis/jget.h"
#include "report/result.h"

/* A growable byte buffer; err is set once an allocation fails and every
 * later write is dropped, so callers check once at the end. */
struct pb {
    uint8_t *p;
    size_t n, cap;
    int err;
};

static void pb_put(struct pb *b, const void *data, size_t len)
{
    if (b->err) return;
    if (b->n + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + len)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->err = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, len);
    b->n += len;
}

/* Base-128 varint, least significant group first. */
static void pb_varint(struct pb *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) tmp[n] |= 0x80;
        n++;
    } while (v);
    pb_put(b, tmp, n);
}

/* A varint field (wire type 0). int64 values go as their two's complement,
 * which is what protobuf does for int64 (not zigzag: that is sint64). */
static void pb_uint(struct pb *b, unsigned field, uint64_t v)
{
    pb_varint(b, (uint64_t)field << 3);
    pb_varint(b, v);
}

/* A length-delimited field (wire type 2): strings, bytes, nested messages
 * and packed repeated numbers. */
static void pb_bytes(struct pb *b, unsigned field, const void *data, size_t len)
{
    pb_varint(b, (uint64_t)field << 3 | 2);
    pb_varint(b, len);
    pb_put(b, data, len);
}

static void pb_msg(struct pb *b, unsigned field, struct pb *sub)
{
    if (sub->err) b->err = 1;
    pb_bytes(b, field, sub->p, sub->n);
    sub->n = 0; /* the caller reuses it */
}

/* The profile under construction: its string table (index by string, kept
 * in a JSON object used as a hash map) and the ids of functions, locations
 * and mappings given out so far, by key. */
struct prof {
    struct pb out;
    json_t *strings, *funcs, *locs, *maps;
    json_int_t nstrings;
};

/* The string table index of s, adding it on first use. */
static int64_t str_id(struct prof *pr, const char *s)
{
    json_t *v = json_object_get(pr->strings, s);
    if (v) return json_integer_value(v);
    json_object_set_new(pr->strings, s, json_integer(pr->nstrings));
    pb_bytes(&pr->out, 6, s, strlen(s)); /* string_table */
    return pr->nstrings++;
}

/* The id of the mapping for a module (by name: addresses are per process
 * and a profile of the tree spans several). */
static uint64_t mapping_id(struct prof *pr, const char *module)
{
    json_t *v = json_object_get(pr->maps, module);
    if (v) return (uint64_t)json_integer_value(v);
    uint64_t id = json_object_size(pr->maps) + 1;
    json_object_set_new(pr->maps, module, json_integer((json_int_t)id));
    struct pb m = {0};
    pb_uint(&m, 1, id);                           /* id */
    pb_uint(&m, 5, (uint64_t)str_id(pr, module)); /* filename */
    pb_uint(&m, 7, 1);                            /* has_functions */
    pb_uint(&m, 8, 1);                            /* has_filenames */
    pb_uint(&m, 9, 1);                            /* has_line_numbers */
    pb_uint(&m, 10, 1);                           /* has_inline_frames */
    pb_msg(&pr->out, 3, &m);
    free(m.p);
    return id;
}

/* The id of a function (name and file); a frame without a symbol is named
 * by its module, as in growth.folded. */
static uint64_t function_id(struct prof *pr, json_t *f)
{
    char name[512], key[1024];
    mc_report_frame_name(f, name, sizeof(name));
    snprintf(key, sizeof(key), "%s\n%s", name, mc_jstr(f, "file"));
    json_t *v = json_object_get(pr->funcs, key);
    if (v) return (uint64_t)json_integer_value(v);
    uint64_t id = json_object_size(pr->funcs) + 1;
    json_object_set_new(pr->funcs, key, json_integer((json_int_t)id));
    struct pb m = {0};
    int64_t sname = str_id(pr, name);
    pb_uint(&m, 1, id);
    pb_uint(&m, 2, (uint64_t)sname); /* name */
    pb_uint(&m, 3, (uint64_t)sname); /* system_name */
    pb_uint(&m, 4, (uint64_t)str_id(pr, mc_jstr(f, "file")));
    pb_msg(&pr->out, 5, &m);
    free(m.p);
    return id;
}

/* The id of the location of frames[from..to]: frames marked inlined are
 * inlined into the next one, so they share its address and become the
 * location's first lines (profile.proto: the last line is the caller the
 * others were inlined into). */
static uint64_t location_id(struct prof *pr, json_t *frames, size_t from, size_t to)
{
    json_t *last = json_array_get(frames, to);
    char key[2048];
    size_t at = (size_t)snprintf(key, sizeof(key), "%s+%s", mc_jstr(last, "module"),
                                 mc_jstr(last, "offset"));
    for (size_t k = from; k <= to && at < sizeof(key); k++) {
        json_t *f = json_array_get(frames, k);
        at += (size_t)snprintf(key + at, sizeof(key) - at, "|%s:%lld", mc_jstr(f, "function"),
                               (long long)json_integer_value(json_object_get(f, "line")));
    }
    json_t *v = json_object_get(pr->locs, key);
    if (v) return (uint64_t)json_integer_value(v);
    uint64_t id = json_object_size(pr->locs) + 1;
    json_object_set_new(pr->locs, key, json_integer((json_int_t)id));
    struct pb m = {0}, line = {0};
    uint64_t map = mapping_id(pr, *mc_jstr(last, "module") ? mc_jstr(last, "module") : "unknown");
    pb_uint(&m, 1, id);
    pb_uint(&m, 2, map);
    pb_uint(&m, 3, strtoull(mc_jstr(last, "offset"), NULL, 16)); /* address */
    for (size_t k = from; k <= to; k++) {
        json_t *f = json_array_get(frames, k);
        pb_uint(&line, 1, function_id(pr, f));
        pb_uint(&line, 2, (uint64_t)json_integer_value(json_object_get(f, "line")));
        pb_msg(&m, 4, &line);
    }
    pb_msg(&pr->out, 4, &m);
    free(m.p);
    free(line.p);
    return id;
}

/* First and last value of a series (0 when it is empty). */
static json_int_t grown(json_t *series)
{
    size_t n = json_array_size(series);
    if (!n) return 0;
    return json_integer_value(json_array_get(series, n - 1)) -
           json_integer_value(json_array_get(series, 0));
}

/* One sample per stack of every process: the call stack from the site
 * outwards, the four values, the process as labels. */
static void samples(struct prof *pr, json_t *doc)
{
    json_t *p, *s;
    size_t i, k;
    struct pb m = {0}, ids = {0}, vals = {0}, lab = {0};
    json_array_foreach (json_object_get(doc, "processes"), i, p) {
        const char *exe = mc_jstr(p, "exe"), *base = strrchr(exe, '/');
        int64_t exe_id = str_id(pr, base ? base + 1 : exe);
        json_array_foreach (json_object_get(p, "stacks"), k, s) {
            json_t *frames = json_object_get(s, "frames");
            size_t n = json_array_size(frames);
            size_t site = (size_t)json_integer_value(json_object_get(s, "site"));
            if (site >= n) continue;
            for (size_t f = site; f < n; f++) {
                size_t from = f;
                while (f + 1 < n &&
                       json_is_true(json_object_get(json_array_get(frames, f), "inlined")))
                    f++;
                pb_varint(&ids, location_id(pr, frames, from, f));
            }
            json_t *series = json_object_get(s, "series");
            int64_t v[4] = {grown(json_object_get(series, "bytes")),
                            grown(json_object_get(series, "count")),
                            json_integer_value(json_object_get(s, "live_bytes")),
                            json_integer_value(json_object_get(s, "live_count"))};
            for (int j = 0; j < 4; j++)
                pb_varint(&vals, (uint64_t)v[j]);
            pb_bytes(&m, 1, ids.p, ids.n);   /* location_id, packed */
            pb_bytes(&m, 2, vals.p, vals.n); /* value, packed */
            if (ids.err || vals.err) m.err = 1;
            ids.n = vals.n = 0;
            pb_uint(&lab, 1, (uint64_t)str_id(pr, "pid"));
            pb_uint(&lab, 3, (uint64_t)json_integer_value(json_object_get(p, "pid")));
            pb_msg(&m, 3, &lab);
            pb_uint(&lab, 1, (uint64_t)str_id(pr, "process"));
            pb_uint(&lab, 2, (uint64_t)exe_id);
            pb_msg(&m, 3, &lab);
            pb_uint(&lab, 1, (uint64_t)str_id(pr, "verdict"));
            pb_uint(&lab, 2, (uint64_t)str_id(pr, mc_jstr(s, "verdict")));
            pb_msg(&m, 3, &lab);
            pb_msg(&pr->out, 2, &m);
        }
    }
    free(m.p);
    free(ids.p);
    free(vals.p);
    free(lab.p);
}

/* gzip of in[0..len) into a new buffer (*out, *outlen). 0 or -ENOMEM. */
static int gzip_buf(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    /* windowBits 15 + 16: a gzip header and trailer rather than zlib's. */
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    size_t cap = deflateBound(&z, (uLong)len) + 32;
    uint8_t *buf = malloc(cap);
    int rc = -ENOMEM;
    if (!buf) goto out;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
        free(buf);
        goto out;
    }
    *out = buf;
    *outlen = cap - z.avail_out;
    rc = 0;
out:
    deflateEnd(&z);
    return rc;
}

int mc_report_pprof(json_t *doc, FILE *out)
{
    struct prof pr = {.strings = json_object(),
                      .funcs = json_object(),
                      .locs = json_object(),
                      .maps = json_object()};
    uint8_t *gz = NULL;
    size_t gzlen = 0;
    int rc = -ENOMEM;
    if (!pr.strings || !pr.funcs || !pr.locs || !pr.maps) goto out;
    str_id(&pr, ""); /* the table starts with the empty string */
    static const char *types[][2] = {{"grown_bytes", "bytes"},
                                     {"grown_objects", "count"},
                                     {"live_bytes", "bytes"},
                                     {"live_objects", "count"}};
    struct pb vt = {0};
    for (int j = 0; j < 4; j++) {
        pb_uint(&vt, 1, (uint64_t)str_id(&pr, types[j][0]));
        pb_uint(&vt, 2, (uint64_t)str_id(&pr, types[j][1]));
        pb_msg(&pr.out, 1, &vt); /* sample_type */
    }
    samples(&pr, doc);
    json_t *run = json_object_get(doc, "run");
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (strptime(mc_jstr(run, "started"), "%Y-%m-%dT%H:%M:%SZ", &tm))
        pb_uint(&pr.out, 9, (uint64_t)timegm(&tm) * 1000000000ull); /* time_nanos */
    pb_uint(&pr.out, 10, (uint64_t)(json_number_value(json_object_get(run, "duration_s")) * 1e9));
    char comment[1024] = "memcreep run:";
    size_t i;
    json_t *a;
    json_array_foreach (json_object_get(run, "command"), i, a) {
        size_t l = strlen(comment);
        snprintf(comment + l, sizeof(comment) - l, " %s", json_string_value(a) ?: "");
    }
    pb_uint(&pr.out, 13, (uint64_t)str_id(&pr, comment));       /* comment */
    pb_uint(&pr.out, 14, (uint64_t)str_id(&pr, "grown_bytes")); /* default_sample_type */
    free(vt.p);
    if (pr.out.err || vt.err) goto out;
    if ((rc = gzip_buf(pr.out.p, pr.out.n, &gz, &gzlen)) != 0) goto out;
    rc = fwrite(gz, 1, gzlen, out) == gzlen && fflush(out) == 0 ? 0 : -EIO;
out:
    free(gz);
    free(pr.out.p);
    json_decref(pr.strings);
    json_decref(pr.funcs);
    json_decref(pr.locs);
    json_decref(pr.maps);
    return rc;
}
