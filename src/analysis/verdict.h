/* verdict.h - turns a series (bytes or objects over time or work) into a
 * verdict: CREEP, PLATEAU, STEADY, or UNKNOWN when there are too few
 * points. docs/statistics.md gives the rules and their reasons. */
#ifndef MC_VERDICT_H
#define MC_VERDICT_H

#include <stddef.h>
#include <stdint.h>

enum mc_verdict {
    MC_V_UNKNOWN = 0, /* too few samples to say */
    MC_V_STEADY,      /* no sustained growth (flat, sawtooth, shrinking) */
    MC_V_PLATEAU,     /* grew, then stopped: a cache filling up */
    MC_V_CREEP,       /* keeps growing */
};

#define MC_MIN_POINTS 12 /* below this no verdict is given */

struct mc_trend {
    enum mc_verdict verdict;
    double slope;      /* Theil-Sen slope of y against x, y-units per x-unit */
    double p;          /* Mann-Kendall one-sided p-value, all points */
    double p_floor;    /* the same on the segment floors */
    double net;        /* last segment floor - first segment floor */
    double late_share; /* share of net that came in the second half */
    size_t n;          /* points used */
};

struct mc_trend_opts {
    double min_growth; /* net growth below this is STEADY whatever the test */
    double alpha;      /* significance for the all-points test (0.01) */
};

/* Classifies y against x (x non-decreasing). Fills *t; never fails. */
void mc_trend_classify(const double *x, const double *y, size_t n, const struct mc_trend_opts *o,
                       struct mc_trend *t);
/* The verdict of one stack's or one type's series: classified when its
 * net floor growth reaches min_growth, else STEADY (UNKNOWN with too few
 * points) without paying for the tests. Fills *t; never fails. */
void mc_judge(const double *x, const double *y, size_t n, double min_growth, struct mc_trend *t);
/* Cheap first look: the net floor growth alone, so that only series that
 * grew enough pay for the O(n^2) tests. */
double mc_trend_net(const double *y, size_t n);
/* The least net growth that can be told from sampling noise in a series of
 * estimated bytes whose blocks were Poisson-sampled with mean R bytes
 * (docs/statistics.md, "Sampled stacks"); min when larger, min when R is 0. */
double mc_sampled_min_growth(double min, double mean, const double *y, size_t n);
/* Why n points of one kind (what: "samples", "snapshots") over span
 * seconds give no verdict, and how long a run would give one, as a sentence
 * in buf ("8 samples in 1.7 s; a verdict needs 12: run for at least 2.6 s
 * at this pace"); needs names what is missing ("a verdict needs"). "" when
 * n is enough. */
void mc_unknown_reason(uint32_t n, double span, const char *what, const char *needs, char *buf,
                       size_t len);
/* "CREEP", "PLATEAU", "STEADY", "UNKNOWN". */
const char *mc_verdict_name(enum mc_verdict v);
/* Parses a name back; -1 when unknown. */
int mc_verdict_parse(const char *s);

#endif
