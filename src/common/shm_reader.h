/* shm_reader.h - reads a process's shared mapping from the memcreep side,
 * checking every offset so a truncated or corrupt file is refused instead
 * of read out of bounds. */
#ifndef MC_SHM_READER_H
#define MC_SHM_READER_H

#include <stddef.h>
#include <stdint.h>

#include "shm_format.h"

struct mc_map {
    const char *base;
    size_t size;
    const struct mc_shm_header *h; /* live: counters only */
    /* The header as checked at open: caps and offsets are taken from here,
     * never from the live header the target can rewrite. */
    struct mc_shm_header lay;
};

/* Maps the file read-only and validates its layout. Returns 0, -errno when
 * it cannot be opened or mapped, -EAGAIN when it is not published yet (no
 * magic: it is written last), -EPROTO when it is not a memcreep mapping of
 * this version. */
int mc_map_open(const char *path, struct mc_map *m);
void mc_map_close(struct mc_map *m);
/* 1 when part of the file was gone while memcreep read it (the target
 * truncated it): those pages read as zeros. */
int mc_map_damaged(const struct mc_map *m);

/* Number of stacks published in insertion order (bounded by capacity). */
uint64_t mc_map_stack_count(const struct mc_map *m);
/* Slot of the i-th published stack, or -1 when not yet published. */
int64_t mc_map_stack_slot(const struct mc_map *m, uint64_t i);
/* The stack record in a slot (slot < stack_cap), NULL otherwise. */
const struct mc_shm_stack *mc_map_stack(const struct mc_map *m, uint32_t slot);
/* The Python type table of the last snapshot and its entry count. */
const struct mc_shm_pytype *mc_map_pytypes(const struct mc_map *m, uint64_t *count);
/* The Python lines that grew while traced (socks = 0), or that made the
 * sockets still open (socks = 1), and their count. */
const struct mc_shm_pyline *mc_map_pylines(const struct mc_map *m, int socks, uint64_t *count);
/* Copies the name and file of a Python code slot (a Python frame's
 * MC_PYFRAME_SLOT), NUL-terminated. Returns 0, or -1 when the slot is out
 * of range or not filled. */
int mc_map_pycode(const struct mc_map *m, uint32_t slot, char *name, size_t nsize, char *file,
                  size_t fsize);
/* Asks the process behind the mapping file for a Python snapshot. Returns
 * the request's ticket (> 0; served once py_done reaches it), or -errno. */
int64_t mc_map_request_py(const char *path, const struct mc_map *m);
/* Tells the process the work done as memcreep counts it (the requests it
 * sent), for its Python line tracing. Returns 0 or -errno. */
int mc_map_set_work(const char *path, double work);
/* What the stack in a slot holds besides bytes, NULL past the table. */
const struct mc_shm_stack_ext *mc_map_stack_ext(const struct mc_map *m, uint32_t slot);
/* The frames of a ready stack; returns the depth (0 for none or invalid). */
uint32_t mc_map_frames(const struct mc_map *m, const struct mc_shm_stack *st,
                       const uint64_t **frames);
/* Published modules and their count. */
const struct mc_shm_module *mc_map_modules(const struct mc_map *m, uint64_t *count);
/* A private copy of the published modules, every path NUL-terminated (the
 * target may have written anything there); free() it. NULL with *count 0
 * when there are none or memory is short. */
struct mc_shm_module *mc_map_modules_copy(const struct mc_map *m, uint64_t *count);
/* A stack's value: its counters plus what thread slabs hold for it, counts
 * in whole blocks. */
struct mc_stack_value {
    int64_t live_bytes;
    int64_t live_count;
    uint64_t allocs;
    uint64_t alloc_bytes;
};

/* Fills vals[slot] for slot 0 and the first *nlisted published stacks
 * (their count is read once, at the start) with each stack's value, taken
 * consistently with the slab protocol (shm_format.h); other entries of
 * vals are not meaningful. Returns 0, or 1 when slabs kept changing and
 * the values may be off by one eviction. */
int mc_map_snapshot(const struct mc_map *m, struct mc_stack_value *vals, uint64_t *nlisted);
/* Asks the process behind the mapping file at path to run malloc_trim(0)
 * once at rest (by its rest thread; else at its next allocations). Returns
 * the request's ticket (> 0), or -errno. */
int64_t mc_map_request_trim(const char *path, const struct mc_map *m);
/* Asks an attached process (memcreep attach) to take its hooks out and
 * go inert; it sets attach_state to MC_ATTACH_OFF once it has. Returns the
 * request's ticket (> 0), or -errno. */
int64_t mc_map_request_detach(const char *path, const struct mc_map *m);
/* 1 once the request with that ticket was served. */
int mc_map_trim_done(const struct mc_map *m, int64_t ticket);
/* Starts allocation epoch epoch in the process and asks for a census of
 * what its stacks hold by epoch (age_bytes). Returns the request's ticket
 * (> 0), or a negative errno. */
int64_t mc_map_request_age(const char *path, const struct mc_map *m, uint32_t epoch);
/* 1 once the census with that ticket was taken. */
int mc_map_age_done(const struct mc_map *m, int64_t ticket);
/* Reads a 64-bit counter of the header atomically. */
uint64_t mc_map_load(const uint64_t *field);
/* The same for a 32-bit field. */
uint32_t mc_map_load32(const uint32_t *field);

#endif
