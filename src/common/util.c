/* util.c - parsing and formatting helpers shared by the command line and the
 * reports. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util.h"

int mc_parse_duration(const char *s, double *out)
{
    char *end;
    if (!s || !*s) return -EINVAL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v < 0) return -EINVAL;
    double mul = 1;
    if (!strcmp(end, "") || !strcmp(end, "s"))
        mul = 1;
    else if (!strcmp(end, "ms"))
        mul = 0.001;
    else if (!strcmp(end, "m") || !strcmp(end, "min"))
        mul = 60;
    else if (!strcmp(end, "h"))
        mul = 3600;
    else
        return -EINVAL;
    /* Nothing memcreep times runs longer than a year; beyond that a value
     * is a typo (1e300), refused rather than clipped. */
    if (v * mul > 366 * 86400.0) return -ERANGE;
    *out = v * mul;
    return 0;
}

int mc_parse_size(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-') return -EINVAL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v < 0) return -EINVAL;
    double mul = 1;
    if (!*end || !strcasecmp(end, "b"))
        mul = 1;
    else if (!strcasecmp(end, "k") || !strcasecmp(end, "kb") || !strcasecmp(end, "kib"))
        mul = 1024;
    else if (!strcasecmp(end, "m") || !strcasecmp(end, "mb") || !strcasecmp(end, "mib"))
        mul = 1024.0 * 1024;
    else if (!strcasecmp(end, "g") || !strcasecmp(end, "gb") || !strcasecmp(end, "gib"))
        mul = 1024.0 * 1024 * 1024;
    else
        return -EINVAL;
    if (v * mul > 9.0e18) return -EINVAL;
    *out = (uint64_t)(v * mul);
    return 0;
}

int mc_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-' || *s == '+') return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -EINVAL;
    if (v < lo || v > hi) return -ERANGE;
    *out = v;
    return 0;
}

void mc_fmt_bytes(char *buf, size_t len, double b, int sign)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double a = fabs(b);
    int u = 0;
    while (a >= 1024 && u < 4) {
        a /= 1024;
        u++;
    }
    const char *sg = b < 0 ? "-" : (sign ? "+" : "");
    if (u == 0)
        snprintf(buf, len, "%s%.0f %s", sg, a, units[u]);
    else
        snprintf(buf, len, "%s%.*f %s", sg, a < 10 ? 2 : (a < 100 ? 1 : 0), a, units[u]);
}

void mc_fmt_count(char *buf, size_t len, double n, int sign)
{
    double a = fabs(n);
    const char *sg = n < 0 ? "-" : (sign ? "+" : "");
    if (a >= 1e6)
        snprintf(buf, len, "%s%.1fM", sg, a / 1e6);
    else if (a >= 1e4)
        snprintf(buf, len, "%s%.1fk", sg, a / 1e3);
    else if (a >= 10 || a == 0)
        snprintf(buf, len, "%s%.0f", sg, a);
    else
        snprintf(buf, len, "%s%.2f", sg, a);
}

double mc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void mc_sleep(double seconds)
{
    if (seconds <= 0) return;
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
}
