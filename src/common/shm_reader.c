/* shm_reader.c - validated, read-only access to a process's shared mapping. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shm_reader.h"

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
        (h->off_stacks | h->off_frames | h->off_stack_list | h->off_modules | h->off_threads |
         h->off_stack_ext) %
                8 !=
            0) {
        mc_map_close(m);
        rc = -EPROTO;
    }
out:
    close(fd);
    return rc;
}

void mc_map_close(struct mc_map *m)
{
    if (m->base) munmap((void *)m->base, m->size);
    memset(m, 0, sizeof(*m));
}

uint64_t mc_map_load(const uint64_t *field)
{
    return __atomic_load_n(field, __ATOMIC_ACQUIRE);
}

uint64_t mc_map_stack_count(const struct mc_map *m)
{
    uint64_t n = mc_map_load(&m->h->stack_count);
    return n < m->h->stack_cap ? n : m->h->stack_cap;
}

int64_t mc_map_stack_slot(const struct mc_map *m, uint64_t i)
{
    const uint32_t *list = (const uint32_t *)(m->base + m->h->off_stack_list);
    if (i >= m->h->stack_cap) return -1;
    uint32_t v = __atomic_load_n(&list[i], __ATOMIC_ACQUIRE);
    if (v == 0 || v > m->h->stack_cap) return -1;
    return (int64_t)v - 1;
}

const struct mc_shm_stack *mc_map_stack(const struct mc_map *m, uint32_t slot)
{
    if (slot >= m->h->stack_cap) return NULL;
    return (const struct mc_shm_stack *)(m->base + m->h->off_stacks) + slot;
}

const struct mc_shm_pytype *mc_map_pytypes(const struct mc_map *m, uint64_t *count)
{
    uint64_t n = mc_map_load(&m->h->py_types_used);
    *count = n < m->h->py_cap ? n : m->h->py_cap;
    return (const struct mc_shm_pytype *)(m->base + m->h->off_py_types);
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
    uint64_t cap = socks ? h->py_socks_cap : h->py_lines_cap;
    *count = n < cap ? n : cap;
    return (const struct mc_shm_pyline *)(m->base + (socks ? h->off_py_socks : h->off_py_lines));
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
    if (slot >= m->h->stack_cap) return NULL;
    return (const struct mc_shm_stack_ext *)(m->base + m->h->off_stack_ext) + slot;
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
    if (off > m->h->frame_cap || depth > m->h->frame_cap - off) return 0;
    *frames = (const uint64_t *)(m->base + m->h->off_frames) + off;
    return depth;
}

const struct mc_shm_module *mc_map_modules(const struct mc_map *m, uint64_t *count)
{
    uint64_t n = mc_map_load(&m->h->module_count);
    *count = n < m->h->module_cap ? n : m->h->module_cap;
    return (const struct mc_shm_module *)(m->base + m->h->off_modules);
}

/* How many slabs a reader must look at. */
static uint32_t slabs_used(const struct mc_map *m)
{
    uint32_t n = __atomic_load_n(&m->h->threads_used, __ATOMIC_ACQUIRE);
    return n < m->h->thread_cap ? n : m->h->thread_cap;
}

/* Counts are kept in 1/MC_COUNT_SCALE blocks; round to whole blocks. */
static void scale_one(struct mc_stack_value *v)
{
    const int64_t half = MC_COUNT_SCALE / 2;
    v->live_count = (v->live_count + (v->live_count >= 0 ? half : -half)) / MC_COUNT_SCALE;
    v->allocs = (v->allocs + (uint64_t)half) / MC_COUNT_SCALE;
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
    const struct mc_shm_header *h = m->h;
    const struct mc_shm_stack *st = (const struct mc_shm_stack *)(m->base + h->off_stacks);
    const struct mc_shm_thread *t = (const struct mc_shm_thread *)(m->base + h->off_threads);
    uint32_t cap = h->stack_cap;
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
                v->live_bytes += __atomic_load_n(&d->live_bytes, __ATOMIC_RELAXED);
                v->live_count += __atomic_load_n(&d->live_count, __ATOMIC_RELAXED);
                v->allocs += __atomic_load_n(&d->allocs, __ATOMIC_RELAXED);
                v->alloc_bytes += __atomic_load_n(&d->alloc_bytes, __ATOMIC_RELAXED);
            }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        for (uint64_t i = 0; i <= listed; i++) {
            int64_t s = i == listed ? MC_STACK_OVERFLOW : mc_map_stack_slot(m, i);
            if (s < 0) continue;
            vals[s].live_bytes += __atomic_load_n(&st[s].live_bytes, __ATOMIC_RELAXED);
            vals[s].live_count += __atomic_load_n(&st[s].live_count, __ATOMIC_RELAXED);
            vals[s].allocs += __atomic_load_n(&st[s].allocs, __ATOMIC_RELAXED);
            vals[s].alloc_bytes += __atomic_load_n(&st[s].alloc_bytes, __ATOMIC_RELAXED);
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

int64_t mc_map_request_trim(const char *path, const struct mc_map *m)
{
    return bump_request(path, &m->h->trim_request, offsetof(struct mc_shm_header, trim_request));
}

int mc_map_trim_done(const struct mc_map *m, int64_t ticket)
{
    return (int64_t)mc_map_load(&m->h->trim_done) >= ticket;
}
