/* run.c - `memcreep run`: launch the target with libmemcreep.so preloaded,
 * sample it until it exits or the duration passes, then analyse, save and
 * print the result. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "analysis/collector.h"
#include "analysis/symbolize.h"
#include "cli/cli.h"
#include "cli/supervise.h"
#include "common/util.h"
#include "report/result.h"

struct run_opts {
    double duration; /* 0: until the target exits */
    double interval;
    double grace;
    uint64_t depth, stacks, min_growth, top, sample_bytes;
    const char *output;
    const char *color;
    int fail_on_creep;
    int quiet;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static void usage(FILE *f)
{
    fputs("usage: memcreep run [options] -- TARGET [ARGS...]\n"
          "\n"
          "Runs TARGET with libmemcreep.so preloaded and watches it (and the processes it\n"
          "starts) until it exits or --duration passes. Prints the growth per call stack\n"
          "and per process on stderr; TARGET keeps stdin, stdout and stderr.\n"
          "\n"
          "  -d, --duration T     stop TARGET after T (SIGTERM, --grace, SIGKILL); e.g. 30s,\n"
          "                       5m, 1h. Default: wait until it exits\n"
          "  -o, --output DIR     write result.json and report.txt into DIR\n"
          "  -i, --interval T     time between samples (default 0.25s)\n"
          "      --grace T        time between SIGTERM and SIGKILL (default 5s)\n"
          "      --depth N        frames kept per stack, 1-256 (default 64)\n"
          "      --stacks N       distinct stacks kept per process (default 65536)\n"
          "      --min-growth S   ignore stacks that grew less than S (default 16KiB)\n"
          "      --sample-bytes S record one allocation per S bytes on average (Poisson\n"
          "                       sampling, unbiased estimates) instead of every one\n"
          "      --top N          stacks shown per process (default 10, 0 = all)\n"
          "      --fail-on-creep  exit with status 1 when creep is found\n"
          "      --color WHEN     auto (default), always, never\n"
          "  -q, --quiet          no progress line and no report on stderr\n"
          "  -h, --help           this text\n"
          "\n"
          "exit status: 0 no creep, 1 creep with --fail-on-creep, 2 usage error,\n"
          "3 target could not start or the preload could not work, 4 internal error\n",
          f);
}

static int parse_args(int argc, char **argv, struct run_opts *o, int *target_at)
{
    static const struct option opts[] = {{"duration", required_argument, 0, 'd'},
                                         {"output", required_argument, 0, 'o'},
                                         {"interval", required_argument, 0, 'i'},
                                         {"grace", required_argument, 0, 'g'},
                                         {"depth", required_argument, 0, 'D'},
                                         {"stacks", required_argument, 0, 'S'},
                                         {"min-growth", required_argument, 0, 'm'},
                                         {"top", required_argument, 0, 't'},
                                         {"fail-on-creep", no_argument, 0, 'F'},
                                         {"color", required_argument, 0, 'c'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {"sample-bytes", required_argument, 0, 'B'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+d:o:i:qh", opts, NULL)) != -1) {
        const char *name = argv[optind - 1];
        switch (c) {
        case 'd':
            if (mc_parse_duration(optarg, &o->duration) || o->duration <= 0) goto bad_time;
            break;
        case 'i':
            if (mc_parse_duration(optarg, &o->interval) || o->interval < 0.01 || o->interval > 3600)
                goto bad_time;
            break;
        case 'g':
            if (mc_parse_duration(optarg, &o->grace) || o->grace > 3600) goto bad_time;
            break;
        case 'o':
            o->output = optarg;
            break;
        case 'D':
            if (mc_parse_u64(optarg, 1, 256, &o->depth)) goto bad_num;
            break;
        case 'S':
            if (mc_parse_u64(optarg, 1024, 1u << 24, &o->stacks)) goto bad_num;
            break;
        case 't':
            if (mc_parse_u64(optarg, 0, 100000, &o->top)) goto bad_num;
            break;
        case 'm':
            if (mc_parse_size(optarg, &o->min_growth)) {
                mc_error("%s takes a size such as 4096, 16k or 2M, not '%s'", name, optarg);
                return -1;
            }
            break;
        case 'B':
            if (mc_parse_size(optarg, &o->sample_bytes) || o->sample_bytes == 0) {
                mc_error("%s takes a size such as 512k, not '%s'", name, optarg);
                return -1;
            }
            break;
        case 'F':
            o->fail_on_creep = 1;
            break;
        case 'c':
            if (strcmp(optarg, "auto") && strcmp(optarg, "always") && strcmp(optarg, "never")) {
                mc_error("--color must be auto, always or never, not '%s'", optarg);
                return -1;
            }
            o->color = optarg;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'h':
            usage(stdout);
            exit(MC_EXIT_OK);
        case ':':
            mc_error("option '%s' needs a value", name);
            return -1;
        default:
            mc_error("run: unknown option '%s' (try 'memcreep run --help')", name);
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
    if (optind >= argc) {
        mc_error("no target: usage is memcreep run [options] -- TARGET [ARGS...]");
        return -1;
    }
    *target_at = optind;
    return 0;
}

/* Creates DIR if needed and checks that files can be written in it. */
static int prepare_output(const char *dir)
{
    char probe[PATH_MAX];
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        mc_error("cannot create output directory '%s': %s", dir, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        mc_error("output '%s' is not a directory", dir);
        return -1;
    }
    snprintf(probe, sizeof(probe), "%s/.memcreep-probe-%d", dir, (int)getpid());
    FILE *f = fopen(probe, "w");
    if (!f) {
        mc_error("cannot write in output directory '%s': %s", dir, strerror(errno));
        return -1;
    }
    fclose(f);
    unlink(probe);
    return 0;
}

/* The private run directory for the shared mappings: tmpfs when there is
 * one (mapped pages then never go to disk), mode 0700 from mkdtemp. */
static int make_run_dir(char *out, size_t len)
{
    const char *bases[] = {"/dev/shm", getenv("TMPDIR"), "/tmp"};
    for (size_t i = 0; i < 3; i++) {
        if (!bases[i] || access(bases[i], W_OK) != 0) continue;
        snprintf(out, len, "%s/memcreep-XXXXXX", bases[i]);
        if (mkdtemp(out)) return 0;
    }
    return -errno;
}

static void remove_run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL)
            if (de->d_name[0] != '.') unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
    }
    rmdir(dir);
}

/* libmemcreep.so next to this executable, or in ../lib or ../lib/memcreep
 * (installed layouts); MEMCREEP_LIB overrides. */
static int find_preload(char *out, size_t len)
{
    const char *env = getenv("MEMCREEP_LIB");
    if (env && *env) {
        snprintf(out, len, "%s", env);
        return access(out, R_OK) == 0 ? 0 : -errno;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) return -errno;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash) *slash = 0;
    const char *rel[] = {"", "/../lib", "/../lib/memcreep"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(out, len, "%s%s/libmemcreep.so", self, rel[i]);
        if (access(out, R_OK) == 0) return 0;
    }
    return -ENOENT;
}

static void progress(const struct mc_collector *c, double t)
{
    const struct mc_points *s = &c->tree;
    if (!s->clk.n) return;
    char rss[32], heap[32];
    mc_fmt_bytes(rss, sizeof(rss), s->rss[s->clk.n - 1], 0);
    mc_fmt_bytes(heap, sizeof(heap), s->heap[s->clk.n - 1], 0);
    size_t live = 0;
    for (size_t i = 0; i < c->nprocs; i++)
        live += c->procs[i]->end == MC_END_RUNNING;
    fprintf(stderr, "\r\033[K[memcreep] %6.1f s  %zu process%s  RSS %s  live heap %s", t, live,
            live == 1 ? "" : "es", rss, heap);
    fflush(stderr);
}

/* Reaps any child; returns 1 with how the root ended once it has. As a
 * subreaper memcreep also inherits orphaned descendants and must reap them. */
static int reap(pid_t root, int *signaled, int *status, int *sig)
{
    int st, found = 0;
    pid_t r;
    while ((r = waitpid(-1, &st, WNOHANG)) > 0) {
        if (r != root) continue;
        *signaled = WIFSIGNALED(st);
        *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        *sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
        found = 1;
    }
    return found;
}

int mc_cmd_run(int argc, char **argv)
{
    struct run_opts o = {0, 0.25, 5, 64, 65536, 16384, 10, 0, NULL, "auto", 0, 0};
    int at, rc = MC_EXIT_OK;
    char rundir[PATH_MAX] = "", lib[PATH_MAX], exe[PATH_MAX];
    char *env[8] = {0};
    char env_buf[6][PATH_MAX + 64];
    struct mc_collector col;
    int have_col = 0;
    json_t *doc = NULL;
    struct mc_symbolizer *sym = NULL;

    if (parse_args(argc, argv, &o, &at) != 0) return MC_EXIT_USAGE;
    char **target = argv + at;

    if (o.output && prepare_output(o.output) != 0) return MC_EXIT_USAGE;
    int r = mc_resolve_exe(target[0], exe, sizeof(exe));
    if (r != 0) {
        mc_error("cannot run '%s': %s", target[0],
                 r == -EACCES   ? "not executable"
                 : r == -EISDIR ? "is a directory"
                                : strerror(-r));
        return MC_EXIT_TARGET;
    }
    int is_static = mc_exe_is_static(exe);
    if (is_static)
        mc_error("'%s' is statically linked: the preload cannot work in it; reporting RSS only",
                 target[0]);
    if (find_preload(lib, sizeof(lib)) != 0) {
        mc_error("cannot find libmemcreep.so next to the memcreep command (set MEMCREEP_LIB)");
        return MC_EXIT_INTERNAL;
    }
    if ((r = make_run_dir(rundir, sizeof(rundir))) != 0) {
        mc_error("cannot create a private run directory: %s", strerror(-r));
        return MC_EXIT_INTERNAL;
    }

    /* LD_PRELOAD keeps what the user had, after ours. */
    const char *old = getenv("LD_PRELOAD");
    snprintf(env_buf[0], sizeof(env_buf[0]), "LD_PRELOAD=%s%s%s", lib, old && *old ? ":" : "",
             old ? old : "");
    snprintf(env_buf[1], sizeof(env_buf[1]), "MEMCREEP_DIR=%s", rundir);
    snprintf(env_buf[2], sizeof(env_buf[2]), "MEMCREEP_DEPTH=%llu", (unsigned long long)o.depth);
    snprintf(env_buf[3], sizeof(env_buf[3]), "MEMCREEP_STACKS=%llu", (unsigned long long)o.stacks);
    snprintf(env_buf[4], sizeof(env_buf[4]), "MEMCREEP_SAMPLE_BYTES=%llu",
             (unsigned long long)o.sample_bytes);
    for (int i = 0; i < 5; i++)
        env[i] = env_buf[i];

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_CHILD_SUBREAPER, 1);

    double t0 = mc_now();
    long started = (long)time(NULL);
    pid_t pid;
    r = mc_spawn(target, env, &pid);
    if (r != 0) {
        mc_error("cannot run '%s': %s", target[0], strerror(-r));
        rc = MC_EXIT_TARGET;
        goto out;
    }
    mc_collector_init(&col, rundir, pid, t0);
    have_col = 1;

    int tty = !o.quiet && isatty(2);
    const char *stopped_by = "exit";
    int signaled = 0, status = 0, sig = 0;
    double next = t0, next_progress = t0 + 1;
    for (;;) {
        if (reap(pid, &signaled, &status, &sig)) break;
        double now = mc_now();
        if (stop_signal || (o.duration > 0 && now - t0 >= o.duration)) {
            stopped_by = stop_signal ? "signal" : "duration";
            mc_collector_tick(&col, 0);
            mc_child_stop(pid, o.grace, &signaled, &status, &sig);
            break;
        }
        if (now >= next) {
            mc_collector_tick(&col, 0);
            next += o.interval;
            if (next < now) next = now + o.interval;
        }
        if (tty && now >= next_progress) {
            progress(&col, now - t0);
            next_progress = now + 1;
        }
        double wait = next - mc_now();
        mc_sleep(wait < 0.02 ? (wait > 0 ? wait : 0) : 0.02);
    }
    if (tty) fputs("\r\033[K", stderr);
    mc_collector_root_ended(&col, signaled ? MC_END_SIGNALED : MC_END_EXITED, status, sig);
    mc_collector_tick(&col, 1);
    mc_group_cleanup(pid, o.grace);
    mc_collector_close(&col);

    struct mc_proc *root = mc_collector_root(&col);
    double ran = mc_now() - t0;
    if (!signaled && status != 0 && ran < 2 * o.interval + 0.5 && col.tree.clk.n <= 3) {
        mc_error("'%s' exited at once with status %d; nothing to measure", target[0], status);
        rc = MC_EXIT_TARGET;
    }

    unsetenv("DEBUGINFOD_URLS"); /* symbols come from local files only */
    sym = mc_symbolizer_new();
    struct mc_run_info ri = {.argc = argc - at,
                             .argv = target,
                             .interval = o.interval,
                             .min_growth = (double)o.min_growth,
                             .top = 50,
                             .stopped_by = stopped_by,
                             .static_target = is_static || !(root && root->has_map),
                             .started = started,
                             .sample_bytes = o.sample_bytes};
    doc = mc_result_build(&col, &ri, sym);
    if (!doc) {
        mc_error("out of memory while building the result");
        rc = MC_EXIT_INTERNAL;
        goto out;
    }
    if (o.output) {
        char path[PATH_MAX + 16];
        snprintf(path, sizeof(path), "%s/result.json", o.output);
        if ((r = mc_result_save(doc, path)) != 0)
            mc_error("cannot write %s: %s", path, strerror(-r));
        snprintf(path, sizeof(path), "%s/report.txt", o.output);
        FILE *f = fopen(path, "w");
        if (f) {
            mc_report_text(doc, f, 0, (int)o.top);
            fclose(f);
        } else {
            mc_error("cannot write %s: %s", path, strerror(errno));
        }
    }
    if (!o.quiet) {
        int colour = !strcmp(o.color, "always") || (!strcmp(o.color, "auto") && isatty(2));
        mc_report_text(doc, stderr, colour, (int)o.top);
    }
    if (!is_static && !(root && root->has_map) && rc == MC_EXIT_OK) {
        mc_error("the preload did not load into '%s' (setuid, or LD_PRELOAD removed?): RSS only",
                 target[0]);
        rc = MC_EXIT_TARGET;
    } else if (is_static && rc == MC_EXIT_OK) {
        rc = MC_EXIT_TARGET;
    } else if (rc == MC_EXIT_OK && o.fail_on_creep && !strcmp(mc_result_verdict(doc), "CREEP")) {
        rc = MC_EXIT_CREEP;
    }

out:
    if (doc) json_decref(doc);
    mc_symbolizer_free(sym);
    if (have_col) mc_collector_free(&col);
    if (rundir[0]) remove_run_dir(rundir);
    return rc;
}
