/* run.c - `memcreep run`: options, one session per protocol asked for
 * (each against a fresh start of the target), saving and printing the
 * results, the side-by-side table for --proto h1,h2, and the exit status. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/load_opts.h"
#include "cli/outfile.h"
#include "cli/session.h"
#include "common/util.h"
#include "load/url.h"
#include "report/result.h"

struct run_opts {
    struct mc_session_opts s;
    struct mc_load_cli load;
    const char *output;
    const char *color;
    const char *metrics; /* --metrics HOST:PORT */
    uint64_t top;
    int fail_on_creep;
    int output_any_owner; /* --output-any-owner */
};

static void usage(FILE *f)
{
    fputs("usage: memcreep run [options] -- TARGET [ARGS...]\n"
          "\n"
          "Runs TARGET with libmemcreep.so preloaded and watches it (and the processes it\n"
          "starts) until it exits, --duration passes or the load is done. Prints the growth\n"
          "per call stack and per process on stderr; TARGET keeps stdin, stdout, stderr.\n"
          "\n"
          "  -d, --duration T     stop TARGET after T (SIGTERM, --grace, SIGKILL); e.g. 30s,\n"
          "                       5m, 1h. Default: wait until it exits\n"
          "  -o, --output DIR     write result.json, report.txt, report.html,\n"
          "                       growth.folded and growth.pb.gz into DIR\n"
          "      --output-any-owner  write into an output directory another user owns\n"
          "  -i, --interval T     time between samples (default 0.05s)\n"
          "      --grace T        time between SIGTERM and SIGKILL (default 5s)\n"
          "      --depth N        frames kept per stack, 1-256 (default 64)\n"
          "      --stacks N       distinct stacks kept per process (default 65536)\n"
          "      --min-growth S   ignore stacks that grew less than S (default 16KiB)\n"
          "      --sample-bytes S record one allocation per S bytes on average (Poisson\n"
          "                       sampling, unbiased estimates) instead of every one\n"
          "      --burst-rate N   a thread making more than N allocations a second is\n"
          "                       sampled (one per 8 KiB) until it slows down (default\n"
          "                       200000 in Python processes, 0 = never elsewhere)\n"
          "      --py-sample-bytes S  Python: record one object of pymalloc's per S bytes\n"
          "                       on average (default 8k; 0 = objects of 512 B or less\n"
          "                       are not counted)\n"
          "      --top N          stacks shown per process (default 10, 0 = all)\n"
          "      --py-trace T     Python: trace allocations by line with tracemalloc for\n"
          "                       2 s every T, inside the program (default 0 = never)\n"
          "      --unit MOD:NAME  Python: each return of the function NAME (qualified:\n"
          "                       Class.method) of module MOD is a unit of work\n"
          "      --python-malloc  run Python with PYTHONMALLOC=malloc: every object\n"
          "                       through malloc, so native stacks show each one\n"
          "      --run-dir DIR    where the target's shared mappings go (default /dev/shm,\n"
          "                       else $TMPDIR or /tmp; see docs/run.md for the room needed)\n"
          "      --metrics H:P    serve live metrics (OpenMetrics / Prometheus text) at\n"
          "                       http://H:P/metrics while the run lasts\n"
          "      --fail-on-creep  exit with status 1 when creep is found\n"
          "      --color WHEN     auto (default), always, never\n"
          "  -q, --quiet          no progress line and no report on stderr\n"
          "\n"
          "load (growth per request; see 'memcreep load --help' for the load options):\n"
          "      --url URL        drive HTTP load at URL once TARGET listens there\n"
          "      --mix FILE       drive a mix of requests instead (memcreep load --help)\n"
          "      --proto P        h1, h2 or h1,h2 (each against a fresh start of TARGET)\n"
          "      --warmup N       requests before measuring (default 100)\n"
          "      --rounds R       rounds of load, a sample after each (default 8)\n"
          "      --round-requests N  requests per round (default 1000; with --duration\n"
          "                       and no --round-requests, rounds share the duration)\n"
          "      --listen-timeout T  how long TARGET may take to listen (default 30s)\n"
          "      --workload CMD   run CMD (with /bin/sh) once TARGET is ready (listens on\n"
          "                       --url if given); the run ends when CMD ends\n"
          "      -c, -m, --rate, --new-conn, -X, -H, --body-file, --urls, -k, --timeout\n"
          "                       as for memcreep load\n"
          "\n"
          "exit status: 0 no creep, 1 creep with --fail-on-creep, 2 usage error,\n"
          "3 target could not start or the preload could not work, 4 internal error or\n"
          "an output file could not be written,\n"
          "5 the target failed by itself (non-zero status, a signal) or --workload failed\n",
          f);
}

static void attach_usage(FILE *f)
{
    fputs("usage: memcreep attach PID [options]\n"
          "\n"
          "Watches the process PID, already running, and the processes under it: from\n"
          "outside (/proc) at once, and from inside once libmemcreep.so is loaded into\n"
          "them (ptrace, then dlopen in the process; docs/attach.md). What was allocated\n"
          "before the attach is not tracked, and its frees are ignored. At the end (the\n"
          "duration, the load done, Ctrl-C) the library takes its hooks out and goes inert;\n"
          "the process keeps running. Prints the same report as memcreep run.\n"
          "\n"
          "      --watch-only     nothing enters the process: /proc only (memory, descriptors,\n"
          "                       sockets, threads, children)\n"
          "  -d, --duration T     stop watching after T (default: until the process ends or\n"
          "                       Ctrl-C)\n"
          "  -o, --output DIR, -i, --interval T, --depth N, --stacks N, --min-growth S,\n"
          "      --sample-bytes S, --burst-rate N, --py-sample-bytes S, --top N, --py-trace T,\n"
          "      --run-dir DIR, --metrics H:P, --fail-on-creep, --color WHEN,\n"
          "  -q, --quiet          as for memcreep run\n"
          "      --url URL, --mix FILE, --proto h1|h2, --warmup N, --rounds R,\n"
          "      --round-requests N, --workload CMD and the load options: as for memcreep run,\n"
          "                       against the running process\n"
          "\n"
          "exit status: 0 no creep, 1 creep with --fail-on-creep, 2 usage error,\n"
          "3 PID could not be attached to (gone, not permitted, static or not glibc, another\n"
          "mount namespace: said on one line; the outside view is reported where it still\n"
          "can be), 4 internal error or an output file could not be written\n",
          f);
}

static int parse_args(int argc, char **argv, struct run_opts *o, int *target_at, int attach)
{
    static const struct option opts[] = {MC_LOAD_LONGOPTS,
                                         {"duration", required_argument, 0, 'd'},
                                         {"output", required_argument, 0, 'o'},
                                         {"interval", required_argument, 0, 'i'},
                                         {"grace", required_argument, 0, 'g'},
                                         {"depth", required_argument, 0, 'D'},
                                         {"stacks", required_argument, 0, 'S'},
                                         {"min-growth", required_argument, 0, 'M'},
                                         {"top", required_argument, 0, 't'},
                                         {"fail-on-creep", no_argument, 0, 'F'},
                                         {"color", required_argument, 0, 'C'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {"sample-bytes", required_argument, 0, 'B'},
                                         {"python-malloc", no_argument, 0, 2010},
                                         {"py-trace", required_argument, 0, 2011},
                                         {"metrics", required_argument, 0, 2012},
                                         {"run-dir", required_argument, 0, 2013},
                                         {"unit", required_argument, 0, 2015},
                                         {"burst-rate", required_argument, 0, 2016},
                                         {"py-sample-bytes", required_argument, 0, 2017},
                                         {"output-any-owner", no_argument, 0, 2014},
                                         {"warmup", required_argument, 0, 2001},
                                         {"rounds", required_argument, 0, 2002},
                                         {"round-requests", required_argument, 0, 2003},
                                         {"listen-timeout", required_argument, 0, 2004},
                                         {"workload", required_argument, 0, 2005},
                                         {"watch-only", no_argument, 0, 2018},
                                         {0, 0, 0, 0}};
    int c, li;
    optind = 1;
    opterr = 0;
    /* run: the options end at TARGET; attach: the PID may stand anywhere. */
    const char *optstring = attach ? ":d:o:i:c:m:X:H:kqh" : "+:d:o:i:c:m:X:H:kqh";
    while ((li = -1, c = getopt_long(argc, argv, optstring, opts, &li)) != -1) {
        /* The option as the user knows it (argv[optind - 1] is its value
         * when the value was a word of its own). */
        char name[64];
        if (li >= 0)
            snprintf(name, sizeof(name), "--%s", opts[li].name);
        else if (c != '?' && c != ':')
            snprintf(name, sizeof(name), "-%c", c);
        else
            snprintf(name, sizeof(name), "%s", argv[optind - 1]);
        /* "--" ends the options: it is never an option's value. */
        if (optarg && !strcmp(optarg, "--")) {
            mc_error("option '%s' needs a value (got '--')", name);
            return -1;
        }
        int r = c == ':' || c == '?' ? 0 : mc_load_cli_option(&o->load, c, optarg);
        if (r < 0) return -1;
        if (r > 0) continue;
        switch (c) {
        case 'd':
            if (mc_parse_duration(optarg, &o->s.duration) || o->s.duration <= 0) goto bad_time;
            break;
        case 'i':
            if (mc_parse_duration(optarg, &o->s.interval) || o->s.interval < 0.01 ||
                o->s.interval > 3600)
                goto bad_time;
            break;
        case 'g':
            if (mc_parse_duration(optarg, &o->s.grace) || o->s.grace > 3600) goto bad_time;
            break;
        case 2004:
            if (mc_parse_duration(optarg, &o->s.listen_timeout) || o->s.listen_timeout <= 0)
                goto bad_time;
            break;
        case 'o':
            o->output = optarg;
            break;
        case 'D':
            if (mc_parse_u64(optarg, 1, 256, &o->s.depth)) goto bad_num;
            break;
        case 'S':
            if (mc_parse_u64(optarg, 1024, 1u << 24, &o->s.stacks)) goto bad_num;
            break;
        case 't':
            if (mc_parse_u64(optarg, 0, 100000, &o->top)) goto bad_num;
            break;
        case 2001:
            if (mc_parse_u64(optarg, 0, 1u << 30, &o->s.warmup)) goto bad_num;
            break;
        case 2002:
            if (mc_parse_u64(optarg, 1, 10000, &o->s.rounds)) goto bad_num;
            break;
        case 2003:
            if (mc_parse_u64(optarg, 1, 1u << 30, &o->s.round_requests)) goto bad_num;
            break;
        case 2005:
            o->s.workload = optarg;
            break;
        case 'M':
            if (mc_parse_size(optarg, &o->s.min_growth)) {
                mc_error("%s takes a size such as 4096, 16k or 2M, not '%s'", name, optarg);
                return -1;
            }
            break;
        case 'B':
            if (mc_parse_size(optarg, &o->s.sample_bytes) || o->s.sample_bytes == 0) {
                mc_error("%s takes a size such as 512k, not '%s'", name, optarg);
                return -1;
            }
            break;
        case 'F':
            o->fail_on_creep = 1;
            break;
        case 'C':
            if (strcmp(optarg, "auto") && strcmp(optarg, "always") && strcmp(optarg, "never")) {
                mc_error("--color must be auto, always or never, not '%s'", optarg);
                return -1;
            }
            o->color = optarg;
            break;
        case 'q':
            o->s.quiet = 1;
            break;
        case 2011:
            if (mc_parse_duration(optarg, &o->s.py_trace) || o->s.py_trace > 86400) {
                mc_error("%s takes a duration up to 24h such as 30s, or 0, not '%s'", name, optarg);
                return -1;
            }
            break;
        case 2012:
            o->metrics = optarg;
            break;
        case 2014:
            o->output_any_owner = 1;
            break;
        case 2016:
            if (mc_parse_u64(optarg, 0, UINT64_MAX / 2, &o->s.burst_rate)) goto bad_num;
            o->s.burst_rate_set = 1;
            break;
        case 2017:
            if (mc_parse_size(optarg, &o->s.py_sample_bytes)) {
                mc_error("%s takes a size such as 8k, or 0, not '%s'", name, optarg);
                return -1;
            }
            break;
        case 2015: {
            if (attach) {
                mc_error("--unit puts a profile function into every Python thread: it needs "
                         "memcreep run, not attach");
                return -1;
            }
            const char *colon = strchr(optarg, ':');
            if (!colon || colon == optarg || !colon[1] || strlen(optarg) > 255 ||
                strpbrk(optarg, " \t\n")) {
                mc_error("%s takes MODULE:QUALNAME such as worker:Poller.poll, not '%s'", name,
                         optarg);
                return -1;
            }
            o->s.py_unit = optarg;
            break;
        }
        case 2013: {
            struct stat sb;
            if (stat(optarg, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
                mc_error("--run-dir takes an existing directory, not '%s'", optarg);
                return -1;
            }
            o->s.run_dir = optarg;
            break;
        }
        case 2018:
            if (!attach) goto unknown;
            o->s.watch_only = 1;
            break;
        case 2010:
            if (attach) {
                mc_error("--python-malloc needs a fresh start of the program: not for attach");
                return -1;
            }
            o->s.python_malloc = 1;
            break;
        case 'h':
            if (attach)
                attach_usage(stdout);
            else
                usage(stdout);
            exit(MC_EXIT_OK);
        case ':':
            mc_error("option '%s' needs a value", argv[optind - 1]);
            return -1;
        default:
        unknown:
            mc_error("%s: unknown option '%s' (try 'memcreep %s --help')", argv[0], name, argv[0]);
            return -1;
        }
        continue;
    bad_time:
        mc_error("%s takes a duration such as 0.5, 10s, 5m or 1h, not '%s'", name, optarg);
        return -1;
    bad_num:
        mc_error("%s is out of range or not a number: '%s'", name, optarg);
        return -1;
    }
    if (attach) {
        const char *p = optind < argc ? argv[optind++] : NULL;
        uint64_t pid;
        if (!p) {
            mc_error("no PID: usage is memcreep attach PID [options]");
            return -1;
        }
        if (mc_parse_u64(p, 1, 4194304, &pid)) {
            mc_error("attach takes a process id, not '%s'", p);
            return -1;
        }
        if (optind < argc) {
            mc_error("attach takes one PID; unexpected '%s'", argv[optind]);
            return -1;
        }
        o->s.attach_pid = (pid_t)pid;
        *target_at = argc;
        return 0;
    }
    if (optind >= argc) {
        mc_error("no target: usage is memcreep run [options] -- TARGET [ARGS...]");
        return -1;
    }
    *target_at = optind;
    return 0;
}

/* Creates DIR if needed and checks that files can be written in it. */
static int prepare_output(const char *dir, int any_owner)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        mc_error("cannot create output directory '%s': %s", dir, strerror(errno));
        return -1;
    }
    int r = mc_out_dir_check(dir, any_owner);
    if (r == -ENOTDIR)
        mc_error("output '%s' is not a directory", dir);
    else if (r == -EPERM)
        mc_error("output directory '%s' belongs to another user (--output-any-owner to write "
                 "there anyway)",
                 dir);
    else if (r)
        mc_error("cannot write in output directory '%s': %s", dir, strerror(-r));
    return r ? -1 : 0;
}

/* The renderings written beside result.json, one per format: each gets
 * the run's documents (two only for the page of both protocols). */
typedef int (*put_fn)(json_t **docs, int n, FILE *f, int top);

static int put_json(json_t **docs, int n, FILE *f, int top)
{
    (void)n;
    (void)top;
    return mc_result_write(docs[0], f);
}

static int put_text(json_t **docs, int n, FILE *f, int top)
{
    (void)n;
    mc_report_text(docs[0], f, 0, top);
    return 0;
}

static int put_folded(json_t **docs, int n, FILE *f, int top)
{
    (void)n;
    (void)top;
    mc_report_folded(docs[0], f);
    return 0;
}

static int put_html(json_t **docs, int n, FILE *f, int top)
{
    return mc_report_html(docs, n, f, top);
}

static int put_pprof(json_t **docs, int n, FILE *f, int top)
{
    (void)n;
    (void)top;
    return mc_report_pprof(docs[0], f);
}

struct rendering {
    put_fn put;
    json_t **docs;
    int n, top;
};

static int put_rendering(FILE *f, void *arg)
{
    struct rendering *r = arg;
    return r->put(r->docs, r->n, f, r->top);
}

/* Writes dir/name with put (safely: outfile.c); says so on stderr when it
 * cannot. Returns 0 or -1. */
static int write_out(const char *dir, const char *name, put_fn put, json_t **docs, int n, int top)
{
    struct rendering r = {put, docs, n, top};
    int rc = mc_out_write(dir, name, put_rendering, &r);
    if (rc) mc_error("cannot write %s/%s: %s", dir, name, strerror(-rc));
    return rc ? -1 : 0;
}

/* Writes result.json and every rendering. Returns 0, or -1 when one of
 * them could not be written (each failure said on stderr). */
static int save(json_t *doc, const char *dir, int top)
{
    static const struct {
        const char *name;
        put_fn put;
    } outs[] = {{"result.json", put_json},
                {"report.txt", put_text},
                {"report.html", put_html},
                {"growth.folded", put_folded},
                {"growth.pb.gz", put_pprof}};
    int rc = 0;
    for (size_t i = 0; i < sizeof(outs) / sizeof(outs[0]); i++)
        if (write_out(dir, outs[i].name, outs[i].put, &doc, 1, top) != 0) rc = -1;
    return rc;
}

/* run and attach: the options, the sessions, the outputs and the exit
 * status are the same; attach watches a process instead of starting one. */
static int run_or_attach(int argc, char **argv, int attach)
{
    struct run_opts o;
    int at, rc = MC_EXIT_OK;
    memset(&o, 0, sizeof(o));
    o.s.interval = 0.05;
    o.s.py_trace = 0;
    o.s.grace = 5;
    o.s.depth = 64;
    o.s.stacks = 65536;
    o.s.min_growth = 16384;
    o.s.py_sample_bytes = 8192;
    o.s.listen_timeout = 30;
    o.s.warmup = 100;
    o.s.rounds = 8;
    o.top = 10;
    o.color = "auto";
    mc_load_cli_init(&o.load);
    if (parse_args(argc, argv, &o, &at, attach) != 0) {
        mc_load_cli_free(&o.load);
        return MC_EXIT_USAGE;
    }
    o.s.target = argv + at;
    o.s.target_argc = argc - at;
    if (attach && o.load.protos == (MC_PROTO_H1 | MC_PROTO_H2)) {
        mc_error("--proto h1,h2 runs each against a fresh start: attach takes one of h1, h2");
        mc_load_cli_free(&o.load);
        return MC_EXIT_USAGE;
    }
    int driven = o.load.o.nurls > 0 && !o.s.workload;
    if (driven && o.s.py_unit) {
        mc_error("--unit and --url both say what a unit of work is: give one");
        mc_load_cli_free(&o.load);
        return MC_EXIT_USAGE;
    }
    if (o.load.o.nurls) {
        char err[512];
        if (mc_load_cli_finish(&o.load) != 0) {
            mc_load_cli_free(&o.load);
            return MC_EXIT_USAGE;
        }
        /* Check the URLs now: a typo must not cost a start of the target. */
        for (size_t i = 0; i < o.load.o.nurls; i++) {
            struct mc_url u;
            if (mc_url_parse(o.load.urls[i], &u, err, sizeof(err)) != 0) {
                mc_error("%s", err);
                mc_load_cli_free(&o.load);
                return MC_EXIT_USAGE;
            }
            struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
            int gai = getaddrinfo(u.host, u.port, &hints, &ai);
            if (gai != 0) {
                mc_error("cannot resolve '%s' in %s: %s", u.host, o.load.urls[i],
                         gai_strerror(gai));
                mc_load_cli_free(&o.load);
                return MC_EXIT_USAGE;
            }
            freeaddrinfo(ai);
        }
        o.s.load = &o.load;
    } else if (o.load.protos != MC_PROTO_H1 || o.load.o.rate > 0 || o.load.o.new_conn) {
        mc_error("load options need --url");
        mc_load_cli_free(&o.load);
        return MC_EXIT_USAGE;
    }
    if (driven && !o.s.round_requests && !o.s.duration) o.s.round_requests = 1000;
    o.s.tty = !o.s.quiet && isatty(2);
    if (o.output && prepare_output(o.output, o.output_any_owner) != 0) {
        mc_load_cli_free(&o.load);
        return MC_EXIT_USAGE;
    }

    if (o.metrics) {
        int r = mc_metrics_start(o.metrics, &o.s.metrics);
        if (r != 0) {
            if (r == -EINVAL)
                mc_error("--metrics takes HOST:PORT with a numeric host (127.0.0.1:9464), not "
                         "'%s'",
                         o.metrics);
            else
                mc_error("cannot serve metrics on %s: %s", o.metrics, strerror(-r));
            mc_load_cli_free(&o.load);
            return MC_EXIT_USAGE;
        }
    }
    enum mc_proto protos[2];
    int np = 0;
    if (!driven || (o.load.protos & MC_PROTO_H1)) protos[np++] = MC_PROTO_H1;
    if (driven && (o.load.protos & MC_PROTO_H2)) protos[np++] = MC_PROTO_H2;
    json_t *docs[2] = {NULL, NULL};
    int colour = !strcmp(o.color, "always") || (!strcmp(o.color, "auto") && isatty(2));
    int failed_status = 0, write_failed = 0;
    for (int i = 0; i < np; i++) {
        struct mc_session_end end;
        o.s.proto = protos[i];
        if (np > 1 && !o.s.quiet)
            fprintf(stderr, "== %s: fresh start of the target\n",
                    protos[i] == MC_PROTO_H2 ? "h2" : "h1");
        int r = mc_session_run(&o.s, &docs[i], &end);
        if (r == MC_SESSION_NOT_STARTED) {
            rc = MC_EXIT_TARGET;
            break;
        }
        if (r != MC_SESSION_OK) {
            rc = MC_EXIT_INTERNAL;
            break;
        }
        if (o.output) {
            char dir[PATH_MAX];
            snprintf(dir, sizeof(dir), "%s%s%s", o.output, np > 1 ? "/" : "",
                     np > 1 ? (protos[i] == MC_PROTO_H2 ? "h2" : "h1") : "");
            if ((np > 1 && prepare_output(dir, o.output_any_owner) != 0) ||
                save(docs[i], dir, (int)o.top) != 0)
                write_failed = 1;
        }
        if (!o.s.quiet) mc_report_text(docs[i], stderr, colour, (int)o.top);
        if (end.target_failed) rc = MC_EXIT_TARGET;
        if (end.failed_status && !failed_status) failed_status = end.failed_status;
    }
    if (np == 2 && docs[0] && docs[1] && !o.s.quiet) mc_report_compare(docs, 2, stderr, colour);
    if (np == 2 && docs[0] && docs[1] && o.output && /* both protocols, beside h1/ and h2/ */
        write_out(o.output, "report.html", put_html, docs, 2, (int)o.top) != 0)
        write_failed = 1;
    /* What was measured did not reach its files: not a success. */
    if (write_failed && (rc == MC_EXIT_OK || rc == MC_EXIT_CREEP)) rc = MC_EXIT_INTERNAL;
    if (rc == MC_EXIT_OK && o.fail_on_creep)
        for (int i = 0; i < np; i++)
            if (docs[i] && !strcmp(mc_result_verdict(docs[i]), "CREEP")) rc = MC_EXIT_CREEP;
    /* The target's own failure wins over a verdict: a CI job that wraps its
     * tests in memcreep must fail when they do. */
    if ((rc == MC_EXIT_OK || rc == MC_EXIT_CREEP) && failed_status) {
        mc_error("the target failed (status %d): exit status %d", failed_status,
                 MC_EXIT_TARGET_FAILED);
        rc = MC_EXIT_TARGET_FAILED;
    }
    for (int i = 0; i < np; i++)
        if (docs[i]) json_decref(docs[i]);
    mc_metrics_stop(o.s.metrics);
    mc_load_cli_free(&o.load);
    return rc;
}

int mc_cmd_run(int argc, char **argv)
{
    return run_or_attach(argc, argv, 0);
}

int mc_cmd_attach(int argc, char **argv)
{
    return run_or_attach(argc, argv, 1);
}
