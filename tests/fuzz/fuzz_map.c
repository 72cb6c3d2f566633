/* fuzz_map.c - libFuzzer target for the mapping reader with the target's
 * freedom: the target owns its mapping file and may write any bytes at any
 * offset, or shorten the file, at any time, also between two reads of
 * memcreep. The input is a list of such acts, each followed by one of the
 * reader's calls; every call must stay in bounds (ASan), and no fault may
 * escape (truncated pages read as zeros). */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/shm_reader.h"
#include "../unit/shm_fixture.h"

static uint64_t get(const uint8_t **p, const uint8_t *end, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n && *p < end; i++)
        v |= (uint64_t) * (*p)++ << (8 * i);
    return v;
}

/* A valid image: a few stacks with frames, a slab, modules, Python rows. */
static struct mc_shm_header *image(size_t *size)
{
    struct mc_shm_header *h = shm_fixture(256, 2048, size);
    struct mc_shm_stack *st = (struct mc_shm_stack *)((char *)h + h->off_stacks);
    uint64_t *fr = (uint64_t *)((char *)h + h->off_frames);
    uint32_t *list = (uint32_t *)((char *)h + h->off_stack_list);
    for (uint32_t i = 0; i < 8; i++) {
        fr[i * 4] = 0x400000 + i;
        st[i + 3].hash = 100 + i;
        st[i + 3].frames = ((uint64_t)(i * 4) << 16) | 4;
        st[i + 3].ready = 1;
        st[i + 3].live_bytes = 64 * (i + 1);
        list[i] = i + 4;
    }
    h->stack_count = 8;
    h->frames_used = 32;
    struct mc_shm_thread *t = (struct mc_shm_thread *)((char *)h + h->off_threads);
    t[0].owner = 1;
    t[0].e[0].slot1 = 4;
    t[0].e[0].live_bytes = 10;
    h->threads_used = 1;
    struct mc_shm_module *m = (struct mc_shm_module *)((char *)h + h->off_modules);
    m[0].lo = 0x400000;
    m[0].hi = 0x500000;
    strcpy(m[0].path, "/bin/true");
    h->module_count = 1;
    struct mc_shm_pytype *py = (struct mc_shm_pytype *)((char *)h + h->off_py_types);
    strcpy(py[0].name, "dict");
    h->py_types_used = 1;
    return h;
}

static void read_all(const struct mc_map *m, int which)
{
    static struct mc_stack_value vals[256];
    uint64_t n, listed;
    const uint64_t *f;
    switch (which % 6) {
    case 0:
        mc_map_snapshot(m, vals, &listed);
        break;
    case 1:
        for (uint64_t i = 0; i < mc_map_stack_count(m); i++) {
            int64_t s = mc_map_stack_slot(m, i);
            const struct mc_shm_stack *st = s >= 0 ? mc_map_stack(m, (uint32_t)s) : NULL;
            uint32_t d = st ? mc_map_frames(m, st, &f) : 0;
            for (uint32_t k = 0; k < d; k++)
                vals[k % 256].allocs += f[k];
            const struct mc_shm_stack_ext *x = s >= 0 ? mc_map_stack_ext(m, (uint32_t)s) : NULL;
            if (x) vals[0].live_count += x->fd_opened;
        }
        break;
    case 2: {
        struct mc_shm_module *c = mc_map_modules_copy(m, &n);
        for (uint64_t i = 0; i < n; i++)
            vals[0].allocs += strlen(c[i].path);
        free(c);
        break;
    }
    case 3: {
        const struct mc_shm_pytype *t = mc_map_pytypes(m, &n);
        for (uint64_t i = 0; i < n; i++)
            vals[0].allocs += strnlen(t[i].name, MC_PY_NAME) + (uint64_t)t[i].live;
        break;
    }
    case 4:
        for (int s = 0; s < 2; s++) {
            const struct mc_shm_pyline *l = mc_map_pylines(m, s, &n);
            for (uint64_t i = 0; i < n; i++)
                vals[0].allocs += strnlen(l[i].where, MC_PY_WHERE) + (uint64_t)l[i].bytes;
        }
        break;
    default:
        vals[0].allocs += mc_map_load(&m->h->work_units) + (uint64_t)mc_map_damaged(m);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz_map", MFD_CLOEXEC);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    size_t size;
    struct mc_shm_header *h = image(&size);
    const uint8_t *p = data, *end = data + len;
    /* First: what the file holds when memcreep opens it. */
    int before = (int)get(&p, end, 1) % 8;
    for (int i = 0; i < before; i++) {
        uint64_t off = get(&p, end, 2) % (size / 8) * 8;
        uint64_t v = get(&p, end, 8);
        memcpy((char *)h + off, &v, sizeof(v));
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, h, size, 0) != (ssize_t)size) abort();
    free(h);
    struct mc_map m;
    if (mc_map_open(path, &m) != 0) return 0;
    /* Then: acts of the target between the reader's calls. */
    while (p < end) {
        int op = (int)get(&p, end, 1);
        uint64_t off = get(&p, end, 3) % size;
        uint64_t v = get(&p, end, 8);
        if (op % 17 == 0)
            (void)!ftruncate(fd, (off_t)(off & ~4095ull));
        else
            (void)!pwrite(fd, &v, 1 + (size_t)(op % 8), (off_t)off);
        read_all(&m, op);
    }
    for (int k = 0; k < 6; k++)
        read_all(&m, k);
    mc_map_close(&m);
    return 0;
}
