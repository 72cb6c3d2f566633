/* result.h - the result of a run as one JSON document (schema
 * "memcreep-run", docs/json-format.md), as the analysis builds it: every
 * verdict, ranking and finding is decided here (result_*.c, reanalyze.c),
 * and src/report renders the document (report/result.h) without reading
 * any target's mapping. */
#ifndef MC_ANALYSIS_RESULT_H
#define MC_ANALYSIS_RESULT_H

#include <jansson.h>
#include <stdio.h>

#include "analysis/age.h"
#include "analysis/collector.h"
#include "analysis/findings.h"
#include "analysis/metric_map.h"
#include "analysis/symbolize.h"
#include "analysis/verdict.h"

#define MC_RESULT_SCHEMA "memcreep-run"
/* 2: findings carry a stable code and a severity (analysis/findings.h);
 * version 1 documents are still read, and upgraded as they are. */
#define MC_RESULT_VERSION 2

struct mc_run_info {
    int argc;
    char **argv;
    double interval;        /* seconds between samples */
    double min_growth;      /* bytes: smaller net growth is STEADY */
    int top;                /* stacks kept per process */
    const char *stopped_by; /* "exit", "duration", "signal" */
    int static_target;      /* the preload could not load: RSS only */
    long started;           /* time(NULL) at launch */
    uint64_t sample_bytes;  /* 0, or the mean bytes between samples */
};

/* The metrics of a series set (analysis/metric_map.h): a new object, NULL
 * when out of memory. mapped: the series of the preload exist. */
json_t *mc_result_metrics(const struct mc_points *s, double min_growth, int mapped);
/* Appends a finding of kind k for process pid to findings, with its code,
 * title, severity and metric from the table (analysis/findings.h); returns
 * it (owned by findings) for the caller to add its evidence. */
json_t *mc_result_add_finding(json_t *findings, enum mc_finding_kind k, pid_t pid);
/* Writes a series' verdict and its evidence (verdict, net_growth, p_value,
 * p_floor, confidence) into the object o of a stack. */
void mc_result_set_trend(json_t *o, const struct mc_trend *tr);
/* A stack's "age" object (analysis/age.h): its survival, the share of it
 * that is old, and the verdict the trend alone gave. New reference. */
json_t *mc_result_age_json(const struct mc_age *a, enum mc_verdict by_trend);
/* Puts a heap's age object (borrowed; NULL: none) on its metric and gives
 * the metric the verdict the age rule leaves (mc_age_verdict), keeping the
 * trend's own in the age object's trend_verdict. */
void mc_result_age_metric(json_t *metric, json_t *age);
/* Sets doc's summary verdict (and the reason of an UNKNOWN) from its
 * processes' stacks and metrics and its findings. */
void mc_result_summarize(json_t *doc);
/* Computes every verdict of a saved run again from its series, with the
 * rules of this memcreep: metrics, stacks, the findings that follow from
 * metrics, the allocation age rule, the Python object types and PYTHON
 * OBJECTS CREEP (runs saved with their snapshots' clock), the summary.
 * Returns 0, or -1 when doc holds no series to judge (err says why). */
int mc_result_reanalyze(json_t *doc, char *err, size_t errlen);

/* The kind (analysis/findings.h: enum mc_finding_kind) of a finding of a
 * result document, from its code (or title); -1 when unknown. */
int mc_result_finding_kind(json_t *finding);

/* Builds the result document from what the collector gathered. Returns a
 * new reference (json_decref it), NULL on allocation failure. */
json_t *mc_result_build(struct mc_collector *c, const struct mc_run_info *ri,
                        struct mc_symbolizer *sym);
/* The frames of a stack of a running process, symbolized, as the document
 * holds them (a new array). *site is the frame to name the stack by: in a
 * Python stack the innermost frame in the program's own files (else the
 * innermost Python frame), *py the innermost Python frame (where the
 * allocation was made, in a library maybe), -1 without one; *nat (when
 * not NULL) the native function below the Python frames; in a native
 * stack *site is the first frame that is not an allocator wrapper. */
json_t *mc_result_frames(struct mc_proc *p, uint32_t slot, struct mc_symbolizer *sym, int *site,
                         int *py, int *nat);
/* Replaces control characters in every string of the document (in
 * place) with '?', so that no renderer passes one to a terminal. */
void mc_result_sanitize(json_t *doc);

#endif
