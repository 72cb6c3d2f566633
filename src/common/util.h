/* util.h - small helpers of the command line: parsing durations and sizes,
 * formatting bytes, time. */
#ifndef MC_UTIL_H
#define MC_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Parses "2.5", "10s", "500ms", "5m", "1h" into seconds. Returns 0, or
 * -EINVAL for anything else (negative, empty, trailing garbage). */
int mc_parse_duration(const char *s, double *out);
/* Parses "4096", "16k", "16KiB", "2M", "1G" into bytes. 0 or -EINVAL. */
int mc_parse_size(const char *s, uint64_t *out);
/* Parses a whole number in [lo, hi]. 0 or -EINVAL / -ERANGE. */
int mc_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);
/* Formats a signed byte count with a binary unit ("+1.5 MiB" when sign). */
void mc_fmt_bytes(char *buf, size_t len, double bytes, int sign);
/* Formats a count with k/M suffix ("+1.2k" when sign). */
void mc_fmt_count(char *buf, size_t len, double n, int sign);
/* CLOCK_MONOTONIC in seconds. */
double mc_now(void);
/* Sleeps for the given seconds; returns early on a signal. */
void mc_sleep(double seconds);

#endif
