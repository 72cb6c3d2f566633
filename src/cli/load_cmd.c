/* load_cmd.c - `memcreep load`: the load driver alone, with a summary like
 * wrk's or h2load's. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/load_opts.h"
#include "common/util.h"
#include "load/summary.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void usage(FILE *f)
{
    fputs("usage: memcreep load URL [options]\n"
          "\n"
          "Sends HTTP/1.1 or HTTP/2 requests to URL and prints throughput, status codes,\n"
          "errors by kind and latency percentiles.\n"
          "\n"
          "  -c, --connections N  connections (default 16)\n"
          "  -m, --streams N      concurrent streams per HTTP/2 connection (default 10)\n"
          "  -n, --requests N     stop after N requests\n"
          "  -d, --duration T     stop after T (default 10s when -n is not given)\n"
          "      --rate R         R requests/s at fixed intended times (open loop); latency\n"
          "                       counts from the intended time\n"
          "      --proto P        h1 (default) or h2: h2c by prior knowledge on http://,\n"
          "                       ALPN h2 on https://\n"
          "      --new-conn       a new connection for every request\n"
          "  -X, --method M       method (default GET, POST with --body-file)\n"
          "  -H, --header H       extra header 'Name: value' (repeatable)\n"
          "      --body-file F    request body\n"
          "      --urls FILE      one URL per line, cycled (same scheme, host and port)\n"
          "                       URLs may hold {seq} (a running number) and {rand:N}\n"
          "      --mix FILE       a mix of requests: a JSON array of {url, method, headers,\n"
          "                       body or body_file, weight, name}, sent in proportion to\n"
          "                       their weights and counted apart (docs/load.md)\n"
          "  -k, --insecure       do not verify the server's certificate\n"
          "      --timeout T      time a connection or request may take (default 10s)\n"
          "      --json           print the summary as JSON\n"
          "  -q, --quiet          no progress line\n"
          "\n"
          "exit status: 0 done (requests that failed are counted, not fatal), 2 usage\n"
          "error, 3 the server could not be reached or stopped answering\n",
          f);
}

struct progress {
    struct mc_load *ld;
    double t0;
};

static int tick(void *arg)
{
    struct progress *p = arg;
    const struct mc_load_stats *st = mc_load_stats(p->ld);
    double t = mc_now() - p->t0;
    uint64_t errs = 0;
    for (int i = 0; i < MC_ERR_KINDS; i++)
        errs += st->errors[i];
    fprintf(stderr, "\r\033[K[load] %6.1f s  %llu requests  %.0f req/s  %llu errors", t,
            (unsigned long long)st->done, t > 0 ? (double)st->done / t : 0,
            (unsigned long long)errs);
    fflush(stderr);
    return interrupted;
}

static int stop_tick(void *arg)
{
    (void)arg;
    return interrupted;
}

int mc_cmd_load(int argc, char **argv)
{
    static const struct option opts[] = {MC_LOAD_LONGOPTS,
                                         {"requests", required_argument, 0, 'n'},
                                         {"duration", required_argument, 0, 'd'},
                                         {"json", no_argument, 0, 'j'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    struct mc_load_cli l;
    uint64_t requests = 0;
    double duration = 0;
    int json = 0, quiet = 0, c, rc = MC_EXIT_OK;
    struct mc_load *ld = NULL;
    char err[512];
    mc_load_cli_init(&l);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:m:n:d:X:H:kqh", opts, NULL)) != -1) {
        /* "--" ends the options: it is never an option's value. */
        if (optarg && !strcmp(optarg, "--")) {
            mc_error("option '%s' needs a value (got '--')", argv[optind - 2]);
            goto usage_error;
        }
        int r = mc_load_cli_option(&l, c, optarg);
        if (r < 0) goto usage_error;
        if (r > 0) continue;
        switch (c) {
        case 'n':
            if (mc_parse_u64(optarg, 1, UINT64_MAX / 2, &requests)) {
                mc_error("-n takes a number of requests, not '%s'", optarg);
                goto usage_error;
            }
            break;
        case 'd':
            if (mc_parse_duration(optarg, &duration) || duration <= 0) {
                mc_error("-d takes a duration such as 10s or 1m, not '%s'", optarg);
                goto usage_error;
            }
            break;
        case 'j':
            json = 1;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            usage(stdout);
            mc_load_cli_free(&l);
            return MC_EXIT_OK;
        case ':':
            mc_error("option '%s' needs a value", argv[optind - 1]);
            goto usage_error;
        default:
            mc_error("load: unknown option '%s' (try 'memcreep load --help')", argv[optind - 1]);
            goto usage_error;
        }
    }
    for (; optind < argc; optind++)
        if (mc_load_cli_add_url(&l, argv[optind]) != 0) goto usage_error;
    if (!l.o.nurls) {
        mc_error("load needs a URL (or --urls FILE, or --mix FILE)");
        goto usage_error;
    }
    if (l.protos == (MC_PROTO_H1 | MC_PROTO_H2)) {
        mc_error("load takes one protocol: --proto h1 or --proto h2");
        goto usage_error;
    }
    if (mc_load_cli_finish(&l) != 0) goto usage_error;
    if (!requests && !duration) duration = 10;
    if (mc_load_new(&l.o, &ld, err, sizeof(err)) != 0) {
        mc_error("%s", err);
        goto usage_error;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct progress pr = {ld, mc_now()};
    int tty = !quiet && isatty(2);
    if (mc_load_run(ld, requests, duration, tty ? 1.0 : 0.2, tty ? tick : stop_tick, &pr, err,
                    sizeof(err)) != 0) {
        if (tty) fputs("\r\033[K", stderr);
        mc_error("%s", err);
        rc = MC_EXIT_TARGET;
    }
    if (tty && rc == MC_EXIT_OK) fputs("\r\033[K", stderr);
    const struct mc_load_stats *st = mc_load_stats(ld);
    if (json) {
        json_t *o = mc_load_summary_json(st);
        json_dumpf(o, stdout, JSON_INDENT(1) | JSON_REAL_PRECISION(10));
        fputc('\n', stdout);
        json_decref(o);
    } else {
        char what[512];
        mc_load_cli_describe(&l, l.o.proto, what, sizeof(what));
        mc_load_summary_text(st, what, stdout);
    }
    mc_load_free(ld);
    mc_load_cli_free(&l);
    return rc;
usage_error:
    mc_load_cli_free(&l);
    return MC_EXIT_USAGE;
}
