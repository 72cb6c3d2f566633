/* shm_fixture.h - builds an empty shared-mapping image in memory, laid out
 * as the preloaded library lays it out, for the table and reader tests. */
#ifndef MC_SHM_FIXTURE_H
#define MC_SHM_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "common/shm_format.h"

#define A64(x) (((x) + 63) & ~(uint64_t)63)

static inline struct mc_shm_header *shm_fixture(uint32_t cap, uint64_t frame_cap, size_t *size)
{
    uint64_t off_stacks = A64(sizeof(struct mc_shm_header));
    uint64_t off_list = A64(off_stacks + cap * sizeof(struct mc_shm_stack));
    uint64_t off_index = A64(off_list + cap * sizeof(uint32_t));
    uint64_t off_frames = A64(off_index + cap * sizeof(uint64_t));
    uint64_t off_modules = A64(off_frames + frame_cap * sizeof(uint64_t));
    uint64_t off_threads = A64(off_modules + 16 * sizeof(struct mc_shm_module));
    uint64_t off_ext = A64(off_threads + 8 * sizeof(struct mc_shm_thread));
    uint64_t off_py = A64(off_ext + cap * sizeof(struct mc_shm_stack_ext));
    uint64_t off_pyl = A64(off_py + 16 * sizeof(struct mc_shm_pytype));
    uint64_t off_pys = A64(off_pyl + 16 * sizeof(struct mc_shm_pyline));
    /* Whole pages, page-aligned, as a mapping is (room.c commits pages). */
    uint64_t total = (A64(off_pys + 16 * sizeof(struct mc_shm_pyline)) + 4095) & ~(uint64_t)4095;
    struct mc_shm_header *h = aligned_alloc(4096, total);
    memset(h, 0, total);
    h->magic = MC_SHM_MAGIC;
    h->version = MC_SHM_VERSION;
    h->header_size = sizeof(*h);
    h->file_size = total;
    h->stack_cap = cap;
    h->frame_cap = frame_cap;
    h->module_cap = 16;
    h->off_stacks = off_stacks;
    h->off_stack_list = off_list;
    h->off_stack_index = off_index;
    h->off_frames = off_frames;
    h->off_modules = off_modules;
    h->off_threads = off_threads;
    h->thread_cap = 8;
    h->off_stack_ext = off_ext;
    h->off_py_types = off_py;
    h->py_cap = 16;
    h->off_py_lines = off_pyl;
    h->py_lines_cap = 16;
    h->off_py_socks = off_pys;
    h->py_socks_cap = 16;
    struct mc_shm_stack *ov = (struct mc_shm_stack *)((char *)h + off_stacks);
    ov->hash = 1;
    ov->ready = 1;
    *size = total;
    return h;
}

#endif
