/* shm_format.h - layout of the per-process shared mapping.
 *
 * Each process running with libmemcreep.so preloaded owns one file in the
 * private run directory (MEMCREEP_DIR), named "p<pid>-<n>.map", mapped
 * MAP_SHARED. The target writes it; the memcreep command reads it while the
 * target runs and after it died (the file outlives the process, so a SIGKILL
 * loses nothing that was published).
 *
 * The file holds offsets, never pointers, so a reader in another process, or
 * a forked child that copies it, sees the same meaning at any address.
 * Layout (all offsets from the start of the file, each 64-byte aligned):
 *
 *   header            struct mc_shm_header
 *   stacks            stack_cap x struct mc_shm_stack, dense: slot 1, 2, ... in
 *                     the order first seen (slot 0: overflow)
 *   stack_list        stack_cap x uint32_t: slot+1 of each stack in insertion
 *                     order, so a reader walks published slots only
 *   stack_index       stack_cap x uint64_t: (hash >> 32) << 32 | slot, open
 *                     addressing by hash; the writers' way to a stack
 *   frames            frame_cap x uint64_t, return addresses, append-only
 *   modules           module_cap x struct mc_shm_module, append-only
 *   threads           thread_cap x struct mc_shm_thread: per-thread counter
 *                     deltas (see below)
 *   stack_ext         stack_cap x struct mc_shm_stack_ext: what a stack holds
 *                     besides bytes (descriptors, unjoined threads), same slot
 *   py_types          py_cap x struct mc_shm_pytype: Python object counts by
 *                     type, from the last snapshot (python.c)
 *   py_lines          py_lines_cap x struct mc_shm_pyline: growth by Python
 *                     line, from the tracing windows
 *   py_socks          py_socks_cap x struct mc_shm_pyline: sockets by the
 *                     Python line that made them, from the same windows
 *   py_codes          py_codes_cap x struct mc_shm_pycode: the Python code
 *                     objects that frames in stacks refer to
 *
 * Versioning: readers accept MC_SHM_VERSION exactly; any change to a field's
 * meaning or position bumps it. docs/shm-format.md describes the same layout.
 */
#ifndef MC_SHM_FORMAT_H
#define MC_SHM_FORMAT_H

#include <stdint.h>

#define MC_SHM_MAGIC   0x3130504545524b4dULL /* "MKREEP01" little-endian */
#define MC_SHM_VERSION 9

/* Process states as published by the target itself. The reader combines this
 * with what the kernel says (waitpid, /proc) to tell how a process ended. */
enum mc_proc_state {
    MC_PROC_RUNNING = 1,
    MC_PROC_EXITED = 2, /* ran its exit path (atexit / destructor) */
    MC_PROC_EXECED = 3, /* replaced by exec; the new image has its own file */
};

/* Kinds of descriptors, as the descriptor hooks classify them. */
enum mc_fd_kind {
    MC_FD_TCP = 0,
    MC_FD_UDP,
    MC_FD_UNIX,
    MC_FD_SOCKET, /* other socket families (netlink, packet...) */
    MC_FD_FILE,   /* open/openat/creat/fopen/opendir/memfd */
    MC_FD_PIPE,   /* pipe, pipe2, FIFOs */
    MC_FD_EVENT,  /* epoll, eventfd, timerfd, signalfd */
    MC_FD_OTHER,  /* anything else (devices seen through dup or SCM_RIGHTS) */
    MC_FD_KINDS
};

/* Stack slot 0 is reserved: it collects everything whose stack could not be
 * recorded (table or frame pool full, capture failed), so totals stay right
 * even when detail is lost. */
#define MC_STACK_OVERFLOW 0

#define MC_PATH_MAX     232
#define MC_BUILD_ID_MAX 20

struct mc_shm_header {
    uint64_t magic;
    uint32_t version;
    uint32_t header_size;
    uint64_t file_size;

    int32_t pid;
    int32_t ppid;
    uint32_t state; /* enum mc_proc_state */
    uint32_t max_depth;
    uint64_t start_ns; /* CLOCK_REALTIME when the mapping was made */

    uint32_t stack_cap; /* power of two */
    uint32_t module_cap;
    uint64_t frame_cap;
    uint64_t off_stacks;
    uint64_t off_stack_list;
    uint64_t off_frames;
    uint64_t off_modules;
    uint64_t off_threads;
    uint32_t thread_cap;
    uint32_t threads_used; /* high-water mark of claimed thread slabs */

    /* Counters written with atomic operations by the target. */
    uint64_t stack_count;  /* entries published in stack_list */
    uint64_t frames_used;  /* frames taken from the pool */
    uint64_t module_count; /* modules published */
    uint64_t lost_stacks;  /* events attributed to MC_STACK_OVERFLOW */
    uint64_t lost_ptrs;    /* allocations not tracked: pointer table full */
    uint64_t work_units;   /* mc_work_done() total */
    uint64_t sample_bytes; /* 0: every allocation; else mean bytes between
                              samples, and byte counts are estimates */

    /* What glibc's allocator holds, from mallinfo2(), refreshed from the
     * allocation path about twice a second while the target allocates. */
    uint64_t mi_update_ns; /* CLOCK_MONOTONIC of the last refresh, 0 = never */
    uint64_t mi_arena;     /* bytes in the brk/arena heaps */
    uint64_t mi_hblkhd;    /* bytes in mmap'd chunks */
    uint64_t mi_uordblks;  /* bytes in use (not mmap'd) */
    uint64_t mi_fordblks;  /* bytes free but held */
    uint64_t mi_keepcost;  /* releasable at the top of the main heap */

    /* malloc_trim(0) on request: memcreep increments trim_request (with
     * pwrite, then a futex wake on its low word); the library's rest thread
     * (rest.c) trims once the process is at rest, or at the target's next
     * events where that thread could not start, and sets trim_done to the
     * value it served. This is how memcreep tells allocator retention (RSS
     * the allocator keeps although the program freed it) from a leak. The
     * trim_* fields below describe the last trim served. */
    uint64_t trim_request;
    uint64_t trim_done;
    uint64_t trim_free_before; /* mi_fordblks just before the last trim */
    uint64_t connects;         /* TCP connect() calls that started a connection */
    uint64_t threads_created;  /* pthread_create calls that succeeded */

    /* Descriptors as the descriptor hooks see them (fd_table.c). fd_live
     * counts open descriptors by kind, those inherited at start included
     * (they have no stack). */
    int64_t fd_live[MC_FD_KINDS];
    uint64_t fd_opened;       /* descriptors opened since start, cumulative */
    uint64_t fd_inherited;    /* open when the image started (exec, 0-2) */
    uint64_t fd_lost;         /* beyond the descriptor table: not tracked */
    int64_t threads_unjoined; /* exited, never joined nor detached */
    uint64_t off_stack_ext;

    /* Python snapshots (python.c). memcreep asks for one by incrementing
     * py_request (pwrite); the library's own thread takes the GIL, counts
     * reachable GC-tracked objects and the cycle garbage freed since the
     * last snapshot by type into py_types, and sets py_done to the request
     * it served. */
    uint32_t py_state; /* enum mc_py_state */
    uint32_t py_cap;
    uint64_t off_py_types;
    uint64_t py_types_used; /* entries published, append-only by name */
    uint64_t py_request;
    uint64_t py_done;
    uint64_t py_skipped; /* requests not served: finalizing, error */
    uint64_t py_snap_ns; /* how long the last snapshot took */
    uint64_t py_garbage; /* cycle garbage found, objects, cumulative */
    /* Growth by Python line, from tracemalloc windows (python_code.c):
     * what each line grew, summed over the windows, and the work and time
     * the windows covered. py_work_ext is 1 + the work done as memcreep
     * counts it (requests it sent), written with each request; 0 = use
     * work_units. */
    uint64_t off_py_lines;
    uint32_t py_lines_cap;
    uint32_t py_socks_cap;
    uint64_t off_py_socks; /* open sockets made while traced, by the
                              program's line (struct mc_shm_pyline, count) */
    uint64_t py_socks_used;
    uint64_t py_lines_used;
    uint64_t py_windows;
    uint64_t py_trace_work;
    uint64_t py_trace_ns;
    uint64_t py_work_ext;
    /* Python code objects met in stacks (python_frames.c): a Python frame
     * in a stack is MC_PYFRAME_TAG | slot << 24 | line. Open addressing by
     * a key of the code object; an entry is valid once ready is 1. */
    uint64_t off_py_codes;
    uint32_t py_codes_cap; /* a power of two */
    uint32_t py_codes_pad;
    uint64_t py_codes_used;

    char exe[MC_PATH_MAX];
    /* Records dropped because the run directory had no room for the pages
     * they needed (room.c): the file system behind it is full. */
    uint64_t room_lost;
    /* Bytes of this file the process has committed (room.c): memcreep's
     * own memory in its RSS (the mapping's Rss in /proc/PID/smaps). */
    uint64_t room_bytes;
    /* Sampling the library chose by itself (hooks.c): the mean of CPython's
     * object domain (0: not hooked), the mean used while a thread's
     * allocations come in a burst, and how many allocation calls such
     * bursts made (counted by thousands as they are checked). */
    uint64_t py_sample_bytes;
    uint64_t burst_sample_bytes;
    uint64_t burst_calls;
    /* The pointer table's private memory (ptr_table.c): the one table of
     * the library's own that grows with the program's heap, and whose
     * pages are all touched (entries are spread by hash). */
    uint64_t own_bytes;

    /* The last trim, read inside the process around malloc_trim(0). */
    uint64_t trim_rss_before; /* resident bytes (statm) just before */
    uint64_t trim_rss_after;  /* and just after */
    uint64_t trim_heap;       /* mi_uordblks + mi_hblkhd before: in use */
    uint64_t trim_free_after; /* mi_fordblks after: free, still held */
    uint64_t trim_rest_ns;    /* how long the process had been at rest when
                                 trimmed; 0: it never was (trimmed busy) */
    uint32_t trim_by_rest;    /* 1: served by the rest thread */
    uint32_t trim_pins;       /* entries used in trim_pin */
    /* The highest live tracked blocks of the brk heap after the trim: what
     * holds its top, so that free() cannot give memory back by itself. */
    struct {
        uint32_t slot;
        uint32_t pad;
        uint64_t bytes;
        uint64_t below_top; /* bytes from the block's end to the heap's end */
    } trim_pin[4];
    /* 1 while the rest thread runs: memcreep then waits for a trim without
     * making the target allocate. */
    uint32_t rest_running;
    uint32_t lib_threads; /* threads of the library's own, now */
    /* The rest thread sleeps on this word's low half; memcreep increments
     * it (pwrite, then a futex wake) with every request it makes. */
    uint64_t rest_bell;

    /* Allocation age (rest.c, analysis/age.c). Every tracked block carries
     * the epoch it was made in: memcreep sets age_epoch (a load round, or a
     * slice of the run) and asks for a census with age_request; the rest
     * thread makes age_epoch the epoch of new blocks, adds up what each
     * stack still holds by epoch into its age_bytes (struct
     * mc_shm_stack_ext) and sets age_done to the request it served. */
    uint64_t age_epoch; /* 0 .. MC_AGE_EPOCHS - 1 */
    uint64_t age_request;
    uint64_t age_done;
    uint64_t age_census_ns;     /* how long the last census took */
    uint64_t age_census_blocks; /* the live blocks it counted */
    uint64_t py_age_done;       /* the age request the Python types last served */

    /* memcreep attach (preload/attach.c, got.c). attach_state says how the
     * library came in: MC_ATTACH_NONE (preloaded by memcreep run), then
     * MC_ATTACH_ON once its hooks were routed into the loaded modules, and
     * MC_ATTACH_OFF once they were taken out again and the library went
     * inert. memcreep asks for that by incrementing detach_request (pwrite,
     * then a ring of rest_bell); the library also detaches by itself when
     * memcreep is gone. */
    uint32_t attach_state;
    uint32_t attach_patched; /* entries of modules' GOTs routed to the hooks */
    uint64_t attach_ns;      /* CLOCK_REALTIME when the hooks went in */
    uint64_t detach_request;
    uint32_t attach_python; /* 1: CPython's API is there, the bridge starts */
    uint32_t attach_pad;
    uint64_t off_stack_index; /* the writers' index of the stacks */
};

enum mc_attach_state { MC_ATTACH_NONE = 0, MC_ATTACH_ON = 1, MC_ATTACH_OFF = 2 };

/* Epochs a block can carry (4 bits in the pointer table): memcreep keeps
 * within them, the last absorbs what comes after. */
#define MC_AGE_EPOCHS 16

/* live_count and allocs count blocks in units of 1/MC_COUNT_SCALE: with
 * byte sampling a recorded block stands for a fractional number of blocks. */
#define MC_COUNT_SCALE 1024

/* One distinct call stack and what it holds. 64 bytes: the counters share
 * the cache line of the hash that led the writer here. */
struct mc_shm_stack {
    uint64_t hash;        /* 0 = empty slot */
    uint64_t frames;      /* (offset into frames << 16) | depth */
    int64_t live_bytes;   /* allocated - freed, bytes */
    int64_t live_count;   /* allocated - freed, blocks */
    uint64_t allocs;      /* blocks allocated, cumulative; frees are
                             allocs - live_count, so free() pays for two
                             atomic updates rather than three */
    uint64_t alloc_bytes; /* bytes allocated, cumulative */
    uint32_t ready;       /* 1 once hash, frames and depth are valid */
    uint32_t threads;     /* threads this stack created, cumulative */
    uint64_t connects;    /* TCP connections this stack started, cumulative */
};

/* What a stack holds besides bytes, in its own array (same slot as the
 * stack) so the hot counters keep their single cache line. Updated with
 * atomic operations: these are system-call-rate events. */
struct mc_shm_stack_ext {
    int32_t fd_live[MC_FD_KINDS]; /* open descriptors this stack opened */
    uint32_t fd_opened;           /* descriptors it opened, cumulative */
    int32_t threads_unjoined;     /* its threads that exited unjoined */
    uint64_t sample_mean;         /* its blocks were sampled, one per this many
                                     bytes on average (0: every one) */
    uint64_t reserved[2];
    /* What the stack held by epoch at the last census, bytes (estimated
     * like live_bytes when sampled). Written only by the census. */
    int64_t age_bytes[MC_AGE_EPOCHS];
};

enum mc_py_state {
    MC_PY_NONE = 0,   /* not a Python process (as far as seen) */
    MC_PY_ACTIVE = 1, /* snapshots are served */
    MC_PY_OFF = 2,    /* stopped: the interpreter finalizes, or failed */
};

#define MC_PY_NAME 48
#define MC_PY_HELD 256

/* One Python type: its GC-tracked objects alive after the snapshot's full
 * collection, how many of its objects only the cycle collector freed
 * (cumulative since the first snapshot), and, for a type that keeps
 * growing, what holds a recent one ("Poller.seen (list)"). */
struct mc_shm_pytype {
    char name[MC_PY_NAME]; /* module.qualname, builtins without module */
    int64_t live;
    uint64_t garbage;
    char held[MC_PY_HELD]; /* "" until found */
    /* What its reachable objects weigh by allocation epoch (bytes of the
     * objects' own blocks, estimated from the sampled ones), at the last
     * snapshot that served an age request (py_age_done). */
    int64_t age_bytes[MC_AGE_EPOCHS];
};

/* A Python frame among a stack's native ones: no user-space address has
 * this top byte. */
#define MC_PYFRAME_TAG     0xfe00000000000000ull
#define MC_IS_PYFRAME(f)   (((f) >> 56) == 0xfe)
#define MC_PYFRAME_SLOT(f) ((uint32_t)((f) >> 24))
#define MC_PYFRAME_LINE(f) ((uint32_t)((f)&0xffffff))

/* One Python code object: where its frames' lines are. */
struct mc_shm_pycode {
    uint64_t key; /* 0 = empty */
    uint32_t ready;
    uint32_t first_line;
    char name[72];  /* co_qualname */
    char file[168]; /* co_filename */
};

#define MC_PY_WHERE 112

/* One Python line that grew while traced: bytes and objects, summed over
 * the tracing windows. */
struct mc_shm_pyline {
    char where[MC_PY_WHERE]; /* file:line */
    int64_t bytes;
    int64_t count;
};

/* One loaded object: where it sits and how to find its file again. */
struct mc_shm_module {
    uint64_t bias; /* load bias (l_addr) */
    uint64_t lo;   /* lowest address of its PT_LOAD segments */
    uint64_t hi;   /* one past the highest */
    uint32_t build_id_len;
    uint8_t build_id[MC_BUILD_ID_MAX];
    char path[MC_PATH_MAX - 24];
};

/* A slot whose frames could not be stored carries this depth and never
 * matches a lookup. */
#define MC_DEPTH_DEAD 0xffff
/* Per-thread counter deltas.
 *
 * Updating a stack's counters in place from every thread makes the cache
 * line holding them travel between cores on each allocation. Instead each
 * thread owns a slab: a direct-mapped cache of MC_SLAB_ENTRIES entries,
 * indexed by slot % MC_SLAB_ENTRIES, holding what this thread added to the
 * stack since the entry was taken. Only the owner writes it, with plain
 * stores. When another slot needs the entry, its deltas are added to the
 * stack's counters (atomically) and the entry is reset: an eviction, which
 * the owner brackets by incrementing seq (odd while it runs).
 *
 * A stack's true value is its counters plus the entries of every slab that
 * hold its slot. A reader takes every slab's seq, reads the entries and the
 * counters, and reads the seqs again; if one moved (or was odd) it tries
 * again. Evictions are rare once each thread's hot stacks sit in its slab,
 * so the reader seldom retries. */
#define MC_SLAB_ENTRIES 256

struct mc_shm_delta {
    uint32_t slot1; /* slot + 1; 0 = unused */
    uint32_t reserved;
    int64_t live_bytes;
    int64_t live_count;
    uint64_t allocs;
    uint64_t alloc_bytes;
};

struct mc_shm_thread {
    uint32_t owner; /* thread id of the owner, 0 = free */
    uint32_t seq;   /* odd while an eviction runs */
    uint64_t reserved[7];
    struct mc_shm_delta e[MC_SLAB_ENTRIES];
};

#define MC_FRAMES_OFF(f)   ((f) >> 16)
#define MC_FRAMES_DEPTH(f) ((uint32_t)((f)&0xffff))

#endif
