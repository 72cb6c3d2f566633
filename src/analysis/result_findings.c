/* result_findings.c - the findings that are not about the heap's trend:
 * FD, SOCKET and THREAD CREEP (from their metrics, with the stacks that
 * opened or started them), CONNECTION CHURN and ALLOCATOR RETENTION (the
 * rules in rules.c), and the descriptor and peer objects of a process. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analysis/age.h"
#include "analysis/findings.h"
#include "analysis/jget.h"
#include "analysis/metric_map.h"
#include "analysis/result_int.h"
#include "analysis/rules.h"
#include "analysis/verdict.h"

/* FD CREEP stopped by the limit (analysis/rules.c). */
static int descriptors_at_limit(const struct mc_proc *p)
{
    return mc_rule_fds_at_limit(p->pts.fds, p->pts.clk.n, p->fd_limit);
}

/* Resource findings of a process: FD, SOCKET and THREAD CREEP. */
void mc_build_resource_findings(json_t *findings, json_t *proc, json_t *m, struct mc_proc *p,
                                struct mc_symbolizer *sym)
{
    const enum mc_finding_kind *kinds = mc_metric_findings;
    for (size_t i = 0; i < MC_METRIC_FINDINGS; i++) {
        json_t *x = json_object_get(m, mc_findings[kinds[i]].metric);
        /* Descriptors that grew until the limit stopped them level off: a
         * plateau at the limit is a leak that ran out of room, not a cache
         * that filled (the program's next open fails with EMFILE). */
        int at_limit = i == 0 && descriptors_at_limit(p);
        if (!at_limit && strcmp(json_string_value(json_object_get(x, "verdict")) ?: "", "CREEP"))
            continue;
        json_t *f = mc_result_add_finding(findings, kinds[i], p->pid);
        json_object_set(f, "evidence", x);
        if (at_limit) json_object_set_new(f, "limit", json_real(p->fd_limit));
        /* The code responsible, as the preload counted it: the stacks that
         * start the threads, or that opened the descriptors still open. */
        static const enum top_by by[] = {TOP_FDS, TOP_SOCKETS, TOP_SOCKETS, TOP_THREADS,
                                         TOP_UNJOINED};
        if (p->has_map) json_object_set_new(f, "stacks", mc_build_top_stacks(p, sym, by[i]));
        /* Sockets: which peers and in which state they pile up. */
        if (by[i] == TOP_SOCKETS) json_object_set(f, "peers", json_object_get(proc, "tcp_peers"));
    }
}

/* CONNECTION CHURN (analysis/rules.c), with the stacks that connect, even
 * when nothing leaks. */
void mc_build_churn(json_t *findings, json_t *o, struct mc_proc *p, struct mc_symbolizer *sym)
{
    const struct mc_points *s = &p->pts;
    uint32_t n = s->clk.n;
    json_t *m = json_object_get(json_object_get(o, "metrics"), "connects");
    json_t *pu = json_object_get(m, "per_unit");
    if (!p->has_map || n < 2) return;
    struct mc_churn ch = {.made = s->connects[n - 1] - s->connects[0],
                          .secs = s->t[n - 1] - s->t[0],
                          .has_unit = pu != NULL,
                          .per_unit = pu ? json_number_value(pu) : 0};
    for (uint32_t i = 0; i < n; i++)
        ch.open_mean += s->tcp_est[i] / n;
    if (!mc_rule_churn(&ch)) return;
    json_t *f = mc_result_add_finding(findings, MC_F_CONNECTION_CHURN, p->pid);
    json_object_set(f, "evidence", m);
    json_object_set_new(f, "connections", json_real(ch.made));
    json_object_set_new(f, "per_s", json_real(ch.per_s));
    json_object_set_new(f, "open_mean", json_real(ch.open_mean));
    json_object_set_new(f, "lifetime_s", json_real(ch.lifetime_s));
    if (pu && json_number_value(pu) > 0)
        json_object_set_new(f, "units_per_connection", json_real(1 / json_number_value(pu)));
    json_object_set_new(f, "stacks", mc_build_top_stacks(p, sym, TOP_CONNECTS));
}

/* ALLOCATOR RETENTION (analysis/rules.c): RSS stays up although nothing
 * leaks. The malloc_trim(0) probe says how much of it the allocator could
 * give back. */

void mc_build_retention(json_t *findings, json_t *o, struct mc_proc *p, struct mc_symbolizer *sym)
{
    if (!p->trim_asked) return;
    json_t *t = json_object();
    json_object_set_new(t, "served", json_boolean(p->trim_served));
    json_object_set_new(t, "at_rest", json_boolean(p->trim_rest_s > 0));
    json_object_set_new(t, "rest_s", json_real(p->trim_rest_s));
    json_object_set_new(t, "by", json_string(p->trim_by_rest ? "rest thread" : "allocation"));
    json_object_set_new(t, "rss_before", json_real(p->trim_rss_before));
    json_object_set_new(t, "rss_after", json_real(p->trim_rss_after));
    json_object_set_new(t, "recovered", json_real(p->trim_rss_before - p->trim_rss_after));
    json_object_set_new(t, "allocator_free", json_real(p->trim_free_before));
    json_object_set_new(t, "allocator_free_after", json_real(p->trim_free_after));
    json_object_set_new(t, "live_heap", json_real(p->trim_heap));
    /* What holds the top of the brk heap: while it lives, free() cannot
     * shrink the heap by itself, however much is free below it. */
    json_t *top = json_array();
    for (int k = 0; k < p->trim_npins; k++) {
        int site, py;
        json_t *e = json_object();
        json_object_set_new(e, "bytes", json_real(p->trim_pin[k].bytes));
        json_object_set_new(e, "below_top", json_real(p->trim_pin[k].below_top));
        json_object_set_new(e, "frames",
                            mc_result_frames(p, p->trim_pin[k].slot, sym, &site, &py, NULL));
        json_object_set_new(e, "site", json_integer(site));
        json_array_append_new(top, e);
    }
    json_object_set_new(t, "heap_top", top);
    json_object_set_new(o, "malloc_trim", t);
    if (!mc_rule_retention(p->trim_free_before, p->trim_heap)) return;
    json_object_set(mc_result_add_finding(findings, MC_F_ALLOCATOR_RETENTION, p->pid), "evidence",
                    t);
}

/* The peers holding most of a process's TCP sockets at its last reading. */
json_t *mc_build_peers(const struct mc_proc_res *r)
{
    json_t *a = json_array();
    for (int i = 0; i < r->npeers; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "peer", json_string(r->peers[i].addr));
        json_object_set_new(o, "state", json_string(r->peers[i].state));
        json_object_set_new(o, "count", json_integer(r->peers[i].count));
        json_array_append_new(a, o);
    }
    return a;
}

/* What the descriptor hooks counted for a process, at the end. */
json_t *mc_build_descriptors(const struct mc_shm_header *h)
{
    int64_t live[MC_FD_KINDS];
    for (int k = 0; k < MC_FD_KINDS; k++)
        live[k] = (int64_t)mc_map_load((const uint64_t *)&h->fd_live[k]);
    json_t *o = json_object();
    json_object_set_new(o, "open", mc_build_fd_kinds(live));
    json_object_set_new(o, "opened", json_integer((json_int_t)mc_map_load(&h->fd_opened)));
    json_object_set_new(o, "inherited", json_integer((json_int_t)mc_map_load(&h->fd_inherited)));
    json_object_set_new(o, "untracked", json_integer((json_int_t)mc_map_load(&h->fd_lost)));
    json_object_set_new(
        o, "threads_unjoined",
        json_integer((json_int_t)mc_map_load((const uint64_t *)&h->threads_unjoined)));
    return o;
}
