/* metric_map.h - the per-process series memcreep keeps, in one table.
 *
 * Each line is one series of struct mc_points (collector.h): its key in
 * result.json (under "series", and under "metrics" when it is judged), the
 * field it is kept in, the label reports show, how it is judged, and
 * whether it needs the preload. result.json's series and metrics, the
 * reports' metric rows and `report --reanalyze` are all generated from it:
 * to add a series, add its field to struct mc_points and a line here.
 *
 * How a series is judged (its least growth, docs/statistics.md):
 *   PAGES  bytes in page-sized steps: at least 256 KiB (and --min-growth)
 *   HEAP   the live heap: --min-growth, raised by the noise of its sampled
 *          part (mc_sampled_min_growth)
 *   COUNT  descriptors, sockets, threads: at least 5
 *   NONE   kept as a series, not judged */
#ifndef MC_METRIC_MAP_H
#define MC_METRIC_MAP_H

/* X(key, field, label, judged, preload_only, row): row 1 when reports
 * show it as a metric row. */
#define MC_METRIC_MAP(X)                                                                           \
    X(rss, rss, "RSS", PAGES, 0, 1)                                                                \
    X(live_heap, heap, "live heap", HEAP, 1, 1)                                                    \
    X(live_count, heap_count, "live blocks", NONE, 1, 0)                                           \
    X(live_heap_sampled, heap_sampled, "live heap, sampled part", NONE, 1, 0)                      \
    X(allocator_free, alloc_free, "allocator free", PAGES, 1, 1)                                   \
    X(allocator_held, alloc_held, "allocator held", NONE, 1, 0)                                    \
    X(fds, fds, "descriptors", COUNT, 0, 1)                                                        \
    X(sockets, sockets, "sockets", COUNT, 0, 1)                                                    \
    X(tcp_established, tcp_est, "TCP established", COUNT, 0, 1)                                    \
    X(tcp_close_wait, tcp_close_wait, "TCP CLOSE_WAIT", COUNT, 0, 1)                               \
    X(time_wait, time_wait, "TCP TIME_WAIT", COUNT, 0, 1)                                          \
    X(threads, threads, "threads", COUNT, 0, 1)                                                    \
    X(connects, connects, "TCP connections made", COUNT, 0, 0)                                     \
    X(threads_unjoined, unjoined, "threads unjoined", COUNT, 1, 1)

enum mc_judged { MC_J_NONE, MC_J_PAGES, MC_J_HEAP, MC_J_COUNT };

#define MC_RSS_MIN_GROWTH (256.0 * 1024) /* page-level noise of RSS */
#define MC_RES_MIN_GROWTH 5.0            /* descriptors, sockets, threads */

#endif
