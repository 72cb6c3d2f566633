/* shm_reader.c - validated, read-only access to a process's shared mapping. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shm_reader.h"

/* ---- reading a file the target may truncate ----
 *
 * The target owns its mapping file and can shorten it at any time (on
 * purpose, or because its file system filled up): a read of a page past
 * the new end is a SIGBUS in memcreep. The handler below turns such a page
 * of a registered mapping into a private page of zeros and lets the read
 * go on; the mapping is marked damaged, and the reader reports it. A fault
 * anywhere else goes to the handler that was there before (or the default
 * action), as if this one did not exist. */
#define MAX_MAPS 4096

static struct {
    uintptr_t base, size;
    int damaged;
} maps[MAX_MAPS];
static struct sigaction prev_bus;
static int handler_set;

static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    for (int i = 0; i < MAX_MAPS; i++) {
        uintptr_t b = __atomic_load_n(&maps[i].base, __ATOMIC_ACQUIRE);
        if (!b || a < b || a - b >= maps[i].size) continue;
        long pg = sysconf(_SC_PAGESIZE);
        void *page = (void *)(a & ~(uintptr_t)(pg - 1));
        if (mmap(page, (size_t)pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) !=
            MAP_FAILED) {
            maps[i].damaged = 1;
            return;
        }
        break;
    }
    if (prev_bus.sa_flags & SA_SIGINFO) {
        prev_bus.sa_sigaction(sig, si, ctx);
    } else if (prev_bus.sa_handler != SIG_IGN && prev_bus.sa_handler != SIG_DFL) {
        prev_bus.sa_handler(sig);
    } else {
        signal(sig, SIG_DFL); /* the fault repeats on return, and kills */
    }
}

static void map_register(const struct mc_map *m)
{
    if (!__atomic_exchange_n(&handler_set, 1, __ATOMIC_ACQ_REL)) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = on_sigbus;
        sa.sa_flags = SA_SIGINFO | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGBUS, &sa, &prev_bus);
    }
    for (int i = 0; i < MAX_MAPS; i++) {
        if (maps[i].base) continue;
        maps[i].size = m->size;
        maps[i].damaged = 0;
        __atomic_store_n(&maps[i].base, (uintptr_t)m->base, __ATOMIC_RELEASE);
        return;
    }
}

static void map_unregister(const struct mc_map *m)
{
    for (int i = 0; i < MAX_MAPS; i++)
        if (maps[i].base == (uintptr_t)m->base)
            __atomic_store_n(&maps[i].base, 0, __ATOMIC_RELEASE);
}

int mc_map_damaged(const struct mc_map *m)
{
    for (int i = 0; i < MAX_MAPS; i++)
        if (maps[i].base == (uintptr_t)m->base && m->base) return maps[i].damaged;
    return 0;
}

static int in_bounds(uint64_t off, uint64_t len, uint64_t size)
{
    return off <= size && len <= size - off;
}

int mc_map_open(const char *path, struct mc_map *m)
{
    int rc = 0;
    struct stat sb;
    memset(m, 0, sizeof(*m));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    if (fstat(fd, &sb) != 0) {
        rc = -errno;
        goto out;
    }
    if ((uint64_t)sb.st_size < sizeof(struct mc_shm_header)) {
        rc = -EPROTO;
        goto out;
    }
    /* The header is read before it is mapped: the preload makes the file
     * sparse and commits its pages as it goes, and on a full tmpfs a read
     * through the mapping of a page not yet committed is SIGBUS, where
     * pread of the hole gives zeros. The magic is written once the header
     * page is committed. */
    uint64_t magic = 0;
    if (pread(fd, &magic, sizeof(magic), (off_t)offsetof(struct mc_shm_header, magic)) !=
            (ssize_t)sizeof(magic) ||
        magic != MC_SHM_MAGIC) {
        rc = magic ? -EPROTO : -EAGAIN;
        goto out;
    }
    void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        rc = -errno;
        goto out;
    }
    m->base = p;
    m->size = (size_t)sb.st_size;
    m->h = p;
    const struct mc_shm_header *h = m->h;
    uint64_t size = m->size;
    if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != MC_SHM_MAGIC ||
        h->version != MC_SHM_VERSION || h->header_size != sizeof(*h) || h->file_size != size ||
        h->stack_cap == 0 || (h->stack_cap & (h->stack_cap - 1)) != 0 ||
        !in_bounds(h->off_stacks, (uint64_t)h->stack_cap * sizeof(struct mc_shm_stack), size) ||
        !in_bounds(h->off_stack_list, (uint64_t)h->stack_cap * sizeof(uint32_t), size) ||
        !in_bounds(h->off_stack_index, (uint64_t)h->stack_cap * sizeof(uint64_t), size) ||
        h->frame_cap > size / sizeof(uint64_t) ||
        !in_bounds(h->off_frames, h->frame_cap * sizeof(uint64_t), size) ||
        !in_bounds(h->off_modules, (uint64_t)h->module_cap * sizeof(struct mc_shm_module), size) ||
        !in_bounds(h->off_threads, (uint64_t)h->thread_cap * sizeof(struct mc_shm_thread), size) ||
        !in_bounds(h->off_stack_ext, (uint64_t)h->stack_cap * sizeof(struct mc_shm_stack_ext),
                   size) ||
        !in_bounds(h->off_py_types, (uint64_t)h->py_cap * sizeof(struct mc_shm_pytype), size) ||
        !in_bounds(h->off_py_lines, (uint64_t)h->py_lines_cap * sizeof(struct mc_shm_pyline),
                   size) ||
        !in_bounds(h->off_py_socks, (uint64_t)h->py_socks_cap * sizeof(struct mc_shm_pyline),
                   size) ||
        !in_bounds(h->off_py_codes, (uint64_t)h->py_codes_cap * sizeof(struct mc_shm_pycode),
                   size) ||
        (h->py_codes_cap & (h->py_codes_cap - 1)) != 0 || h->off_py_codes % 8 != 0 ||
        (h->off_stacks | h->off_frames | h->off_stack_list | h->off_modules | h->off_threads |
         h->off_stack_ext | h->off_py_types | h->off_py_lines | h->off_py_socks) %
                8 !=
            0) {
        mc_map_close(m);
        rc = -EPROTO;
    } else {
        /* The layout is frozen as it was checked: the target can write its
         * header at any time, and nothing read later may change where the
         * reader looks or how much it reads. */
        memcpy(&m->lay, h, sizeof(m->lay));
        map_register(m);
    }
out:
    close(fd);
    return rc;
}

void mc_map_close(struct mc_map *m)
{
    if (m->base) {
        map_unregister(m);
        munmap((void *)m->base, m->size);
    }
    memset(m, 0, sizeof(*m));
}

uint64_t mc_map_load(const uint64_t *field)
{
    return __atomic_load_n(field, __ATOMIC_ACQUIRE);
}

uint32_t mc_map_load32(const uint32_t *field)
{
    return __atomic_load_n(field, __ATOMIC_ACQUIRE);
}

uint64_t mc_map_stack_count(const struct mc_map *m)
{
    uint64_t n = mc_map_load(&m->h->stack_count);
    return n < m->lay.stack_cap ? n : m->lay.stack_cap;
}

int64_t mc_map_stack_slot(const struct mc_map *m, uint64_t i)
{
    const uint32_t *list = (const uint32_t *)(m->base + m->lay.off_stack_list);
    if (i >= m->lay.stack_cap) return -1;
    uint32_t v = __atomic_load_n(&list[i], __ATOMIC_ACQUIRE);
    if (v == 0 || v > m->lay.stack_cap) return -1;
    return (int64_t)v - 1;
}

const struct mc_shm_stack *mc_map_stack(const struct mc_map *m, uint32_t slot)
{
    if (slot >= m->lay.stack_cap) return NULL;
    return (const struct mc_shm_stack *)(m->base + m->lay.off_stacks) + slot;
}

const struct mc_shm_pytype *mc_map_pytypes(const struct mc_map *m, uint64_t *count)
{
    uint64_t n = mc_map_load(&m->h->py_types_used);
    *count = n < m->lay.py_cap ? n : m->lay.py_cap;
    return (const struct mc_shm_pytype *)(m->base + m->lay.off_py_types);
}

/* Increments a request counter of the header. The reader maps read-only;
 * the request goes through the file, whose page the target sees through
 * its own shared mapping. Returns the new value (the ticket) or -errno. */
static int64_t bump_request(const char *path, const uint64_t *field, size_t off)
{
    uint64_t want = mc_map_load(field) + 1;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t w = pwrite(fd, &want, sizeof(want), (off_t)off);
    int e = errno;
    close(fd);
    if (w != (ssize_t)sizeof(want)) return -(w < 0 ? e : EIO);
    return (int64_t)want;
}

const struct mc_shm_pyline *mc_map_pylines(const struct mc_map *m, int socks, uint64_t *count)
{
    const struct mc_shm_header *h = m->h;
    uint64_t n = mc_map_load(socks ? &h->py_socks_used : &h->py_lines_used);
    uint64_t cap = socks ? m->lay.py_socks_cap : m->lay.py_lines_cap;
    *count = n < cap ? n : cap;
    return (const struct mc_shm_pyline *)(m->base +
                                          (socks ? m->lay.off_py_socks : m->lay.off_py_lines));
}

int mc_map_pycode(const struct mc_map *m, uint32_t slot, char *name, size_t nsize, char *file,
                  size_t fsize)
{
    if (slot >= m->lay.py_codes_cap || !nsize || !fsize) return -1;
    const struct mc_shm_pycode *c =
        (const struct mc_shm_pycode *)(m->base + m->lay.off_py_codes) + slot;
    if (!__atomic_load_n(&c->ready, __ATOMIC_ACQUIRE)) return -1;
    size_t ln = strnlen(c->name, sizeof(c->name)), lf = strnlen(c->file, sizeof(c->file));
    if (ln >= nsize) ln = nsize - 1;
    if (lf >= fsize) lf = fsize - 1;
    memcpy(name, c->name, ln);
    name[ln] = 0;
    memcpy(file, c->file, lf);
    file[lf] = 0;
    return 0;
}

int mc_map_set_work(const char *path, double work)
{
    uint64_t w = (uint64_t)work + 1;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t r = pwrite(fd, &w, sizeof(w), (off_t)offsetof(struct mc_shm_header, py_work_ext));
    close(fd);
    return r == (ssize_t)sizeof(w) ? 0 : -EIO;
}

int64_t mc_map_request_py(const char *path, const struct mc_map *m)
{
    return bump_request(path, &m->h->py_request, offsetof(struct mc_shm_header, py_request));
}

const struct mc_shm_stack_ext *mc_map_stack_ext(const struct mc_map *m, uint32_t slot)
{
    if (slot >= m->lay.stack_cap) return NULL;
    return (const struct mc_shm_stack_ext *)(m->base + m->lay.off_stack_ext) + slot;
}

uint32_t mc_map_frames(const struct mc_map *m, const struct mc_shm_stack *st,
                       const uint64_t **frames)
{
    *frames = NULL;
    if (!__atomic_load_n(&st->ready, __ATOMIC_ACQUIRE)) return 0;
    uint64_t f = st->frames;
    uint64_t off = MC_FRAMES_OFF(f);
    uint32_t depth = MC_FRAMES_DEPTH(f);
    if (depth == 0 || depth == MC_DEPTH_DEAD || depth > 4096) return 0;
    if (off > m->lay.frame_cap || depth > m->lay.frame_cap - off) return 0;
    *frames = (const uint64_t *)(m->base + m->lay.off_frames) + off;
    return depth;
}

const struct mc_shm_module *mc_map_modules(const struct mc_map *m, uint64_t *count)
{
    uint64_t n = mc_map_load(&m->h->module_count);
    *count = n < m->lay.module_cap ? n : m->lay.module_cap;
    return (const struct mc_shm_module *)(m->base + m->lay.off_modules);
}

struct mc_shm_module *mc_map_modules_copy(const struct mc_map *m, uint64_t *count)
{
    uint64_t n;
    const struct mc_shm_module *src = mc_map_modules(m, &n);
    struct mc_shm_module *c = n ? malloc(n * sizeof(*c)) : NULL;
    *count = c ? n : 0;
    if (!c) return NULL;
    memcpy(c, src, n * sizeof(*c));
    for (uint64_t i = 0; i < n; i++) {
        c[i].path[sizeof(c[i].path) - 1] = 0;
        if (c[i].build_id_len > MC_BUILD_ID_MAX) c[i].build_id_len = MC_BUILD_ID_MAX;
    }
    return c;
}

/* How many slabs a reader must look at. */
static uint32_t slabs_used(const struct mc_map *m)
{
    uint32_t n = __atomic_load_n(&m->h->threads_used, __ATOMIC_ACQUIRE);
    return n < m->lay.thread_cap ? n : m->lay.thread_cap;
}

/* Adds a counter the target wrote: any value, so the sum wraps (two's
 * complement) instead of overflowing. */
static inline void add_i64(int64_t *sum, const int64_t *field)
{
    *sum = (int64_t)((uint64_t)*sum + (uint64_t)__atomic_load_n(field, __ATOMIC_RELAXED));
}

static inline void add_u64(uint64_t *sum, const uint64_t *field)
{
    *sum += __atomic_load_n(field, __ATOMIC_RELAXED);
}

/* Counts are kept in 1/MC_COUNT_SCALE blocks; round to whole blocks. */
/* Values no real process reaches (a petabyte, 2^50 blocks) are clamped:
 * whatever the target wrote, the analysis's sums and differences of a few
 * of them cannot overflow. */
#define VALUE_MAX (1ll << 50)

static int64_t clamp_i64(int64_t v)
{
    return v > VALUE_MAX ? VALUE_MAX : v < -VALUE_MAX ? -VALUE_MAX : v;
}

static void scale_one(struct mc_stack_value *v)
{
    const int64_t half = MC_COUNT_SCALE / 2;
    int64_t q = v->live_count / MC_COUNT_SCALE, r = v->live_count % MC_COUNT_SCALE;
    v->live_count = clamp_i64(q + (r >= half) - (r <= -half));
    uint64_t a = v->allocs / MC_COUNT_SCALE + (v->allocs % MC_COUNT_SCALE >= (uint64_t)half);
    v->allocs = a > (uint64_t)VALUE_MAX ? (uint64_t)VALUE_MAX : a;
    v->live_bytes = clamp_i64(v->live_bytes);
    if (v->alloc_bytes > (uint64_t)VALUE_MAX) v->alloc_bytes = (uint64_t)VALUE_MAX;
}

static void scale_counts(const struct mc_map *m, struct mc_stack_value *v, uint64_t listed)
{
    scale_one(&v[MC_STACK_OVERFLOW]);
    for (uint64_t i = 0; i < listed; i++) {
        int64_t s = mc_map_stack_slot(m, i);
        if (s > 0) scale_one(&v[s]);
    }
}

int mc_map_snapshot(const struct mc_map *m, struct mc_stack_value *vals, uint64_t *nlisted)
{
    enum { TRIES = 16, MAX_SEQS = 4096 };
    static uint32_t seqs[MAX_SEQS];
    const struct mc_shm_stack *st = (const struct mc_shm_stack *)(m->base + m->lay.off_stacks);
    const struct mc_shm_thread *t = (const struct mc_shm_thread *)(m->base + m->lay.off_threads);
    uint32_t cap = m->lay.stack_cap;
    uint64_t listed = mc_map_stack_count(m);
    *nlisted = listed;
    for (int attempt = 0; attempt < TRIES; attempt++) {
        uint32_t n = slabs_used(m);
        int busy = 0;
        for (uint32_t i = 0; i < n && i < MAX_SEQS; i++) {
            seqs[i] = __atomic_load_n(&t[i].seq, __ATOMIC_ACQUIRE);
            busy |= seqs[i] & 1;
        }
        if (busy) continue;
        /* Only published stacks are read; the others' values are left as
         * they are and never used. */
        vals[MC_STACK_OVERFLOW] = (struct mc_stack_value){0, 0, 0, 0};
        for (uint64_t i = 0; i < listed; i++) {
            int64_t s = mc_map_stack_slot(m, i);
            if (s >= 0) vals[s] = (struct mc_stack_value){0, 0, 0, 0};
        }
        for (uint32_t i = 0; i < n; i++)
            for (int k = 0; k < MC_SLAB_ENTRIES; k++) {
                const struct mc_shm_delta *d = &t[i].e[k];
                uint32_t s1 = __atomic_load_n(&d->slot1, __ATOMIC_RELAXED);
                if (s1 == 0 || s1 > cap) continue;
                struct mc_stack_value *v = &vals[s1 - 1];
                add_i64(&v->live_bytes, &d->live_bytes);
                add_i64(&v->live_count, &d->live_count);
                add_u64(&v->allocs, &d->allocs);
                add_u64(&v->alloc_bytes, &d->alloc_bytes);
            }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        for (uint64_t i = 0; i <= listed; i++) {
            int64_t s = i == listed ? MC_STACK_OVERFLOW : mc_map_stack_slot(m, i);
            if (s < 0) continue;
            add_i64(&vals[s].live_bytes, &st[s].live_bytes);
            add_i64(&vals[s].live_count, &st[s].live_count);
            add_u64(&vals[s].allocs, &st[s].allocs);
            add_u64(&vals[s].alloc_bytes, &st[s].alloc_bytes);
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        int same = slabs_used(m) == n;
        for (uint32_t i = 0; same && i < n && i < MAX_SEQS; i++)
            same = __atomic_load_n(&t[i].seq, __ATOMIC_ACQUIRE) == seqs[i];
        if (same) {
            scale_counts(m, vals, listed);
            return 0;
        }
    }
    scale_counts(m, vals, listed);
    return 1;
}

/* Rings the rest thread's bell (rest.c) after a request. A shared futex is
 * keyed by file page, so the wake reaches it through this read-only
 * mapping; if it did not, the thread's bounded wait would. */
static void ring(const char *path, const struct mc_map *m)
{
    if (bump_request(path, &m->h->rest_bell, offsetof(struct mc_shm_header, rest_bell)) > 0)
        syscall(SYS_futex, (const uint32_t *)&m->h->rest_bell, FUTEX_WAKE, 1, NULL, NULL, 0);
}

int64_t mc_map_request_trim(const char *path, const struct mc_map *m)
{
    int64_t t =
        bump_request(path, &m->h->trim_request, offsetof(struct mc_shm_header, trim_request));
    if (t > 0) ring(path, m);
    return t;
}

int64_t mc_map_request_detach(const char *path, const struct mc_map *m)
{
    int64_t t =
        bump_request(path, &m->h->detach_request, offsetof(struct mc_shm_header, detach_request));
    if (t > 0) ring(path, m);
    return t;
}

int64_t mc_map_request_age(const char *path, const struct mc_map *m, uint32_t epoch)
{
    uint64_t e = epoch;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t w = pwrite(fd, &e, sizeof(e), (off_t)offsetof(struct mc_shm_header, age_epoch));
    int err = errno;
    close(fd);
    if (w != (ssize_t)sizeof(e)) return -(w < 0 ? err : EIO);
    int64_t t = bump_request(path, &m->h->age_request, offsetof(struct mc_shm_header, age_request));
    if (t > 0) ring(path, m);
    return t;
}

int mc_map_age_done(const struct mc_map *m, int64_t ticket)
{
    return (int64_t)mc_map_load(&m->h->age_done) >= ticket;
}

int mc_map_trim_done(const struct mc_map *m, int64_t ticket)
{
    return (int64_t)mc_map_load(&m->h->trim_done) >= ticket;
}
