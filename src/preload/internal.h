/* internal.h - what the parts of libmemcreep.so share with each other.
 * Nothing here is exported: the library is built with -fvisibility=hidden and
 * exports only the allocation hooks and the public API of memcreep.h. */
#ifndef MC_PRELOAD_INTERNAL_H
#define MC_PRELOAD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "../common/shm_format.h"

/* Thread-local variables of the hooks: initial-exec (an offset from the
 * thread pointer, no call) in the preloaded library. The library memcreep
 * attach loads with dlopen (libmemcreep-attach.so, built from the same
 * files with MC_DYNAMIC_TLS) cannot have them so: a module loaded late gets
 * static TLS only from a small reserve, far less than the caches here
 * need, and its thread-local variables are reached through
 * __tls_get_addr instead. */
#ifdef MC_DYNAMIC_TLS
#define TLS_FAST
#else
#define TLS_FAST __attribute__((tls_model("initial-exec")))
#endif

#define MC_LIKELY(x)   __builtin_expect(!!(x), 1)
#define MC_UNLIKELY(x) __builtin_expect(!!(x), 0)

#define MC_DEFAULT_DEPTH 64
#define MC_MAX_DEPTH     256

/* ---- publish.c: the shared mapping and process life cycle ---- */

/* The mapping of this process, or NULL before init / when disabled. */
extern struct mc_shm_header *mc_shm;
/* Makes the mapping and starts recording (the constructor under memcreep
 * run; mc_attach_start under attach): mc_active is 1 after it unless the
 * mapping could not be made. */
void mc_publish_start(void);
/* Non-zero once the library is ready to record. */
extern int mc_active;
/* The mapping's layout (capacities and offsets) as this process made it: a
 * private copy, so that a program writing over its header cannot send the
 * library's own reads and writes anywhere else. */
extern struct mc_shm_header mc_lay;

/* Makes sure the mapping belongs to this process (a forked child first gets
 * its own copy). Returns 0 when recording may go on, -1 when it may not. */
int mc_publish_own(void);
/* Non-zero in the process that owns the mapping; 0 in a vfork child, which
 * shares the parent's memory until it calls exec. */
int mc_publish_owner(void);
/* The run directory memcreep gave this process (a private copy), or ""
 * when not started by memcreep. */
const char *mc_publish_run_dir(void);
/* Refreshes the published allocator statistics if they are stale. */
void mc_publish_mallinfo(void);
/* Runs malloc_trim(0) if memcreep asked for it since the last time. */
void mc_publish_trim(void);
/* Re-reads the list of loaded objects when it changed (dlopen/dlclose). */
void mc_publish_modules(void);

/* ---- rest.c: the rest thread, which serves the malloc_trim probe ---- */

/* Arms the rest thread's start (at start, and in a forked child once its
 * mapping is its own); mc_rest_poll, from the allocation path, starts it
 * once the process has lived a little. Without it the probe is served from
 * the allocation path. */
void mc_rest_arm(void);
void mc_rest_poll(void);
void mc_rest_start(void);
/* The forked child's copy of the header counted the parent's thread. */
void mc_rest_after_fork(void);
/* Non-zero while the rest thread runs in this process. */
int mc_rest_running(void);
/* Serves trim request want: mallinfo2 and RSS before and after
 * malloc_trim(0), into the header, then trim_done. rest_ns: how long the
 * process had been at rest (0: busy). by_rest: called by the rest thread,
 * which also names the blocks at the heap's top (a hook must not: it scans
 * the pointer table under its locks). */
void mc_rest_serve(uint64_t want, uint64_t rest_ns, int by_rest);

/* ---- room.c: pages of the mapping backed before their first touch ---- */

/* Sets up the committed-page map for the mapping at map (size bytes, file
 * descriptor fd, used only on kernels without MADV_POPULATE_WRITE) and
 * commits its first page. Returns 0, or -1 when there is no room at all. */
int mc_room_init(void *map, uint64_t size, int fd);
/* Makes sure [p, p + len) of the mapping has memory behind it. Returns 0,
 * or -1 (counted in room_lost) when the file system has no room: the
 * caller then drops what it was about to write there. */
int mc_room_commit(const void *p, uint64_t len);
/* The mapping moved to map (a forked child's copy mapped over the old
 * address): same file, same committed pages. */
void mc_room_rebase(void *map);

/* ---- hooks.c: the reentrancy guard, for hooks in other files ---- */

int mc_in_hook(void);
/* The process runs Python (objects: its object domain is hooked): sample
 * allocation bursts unless MEMCREEP_BURST_RATE said otherwise, and state
 * the sampling in the header. */
void mc_hooks_python(int objects);
/* An allocator as CPython's PyMemAllocatorEx lays it out. */
struct mc_allocator {
    void *ctx;
    void *(*malloc)(void *ctx, size_t n);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *p, size_t n);
    void (*free)(void *ctx, void *p);
};
/* In front of CPython's mem and object domains (python_alloc.c), with the
 * allocator they replace (a struct mc_allocator) as ctx: call it and
 * record, sampled, the blocks it served itself. */
void *mc_obj_malloc(void *ctx, size_t n);
void *mc_obj_calloc(void *ctx, size_t nelem, size_t elsize);
void *mc_obj_realloc(void *ctx, void *p, size_t n);
void mc_obj_free(void *ctx, void *p);
void mc_set_in_hook(int v);
/* The bytes a recorded block stands for (its size, or its weight when it
 * was sampled), from its size as the pointer table keeps it. */
uint64_t mc_hooks_weight(uint64_t tagged);
/* While on (1), what this thread allocates through malloc and calloc comes
 * from the library's own static buffer, not the program's heap: set around
 * the creation of the library's threads, whose block of thread variables
 * (glibc's DTV) would otherwise be a live block of the program's heap,
 * made at whatever moment the thread starts, that can hold its top and
 * keep free() from giving memory back. */
void mc_hooks_own(int on);

/* ---- capture.c: call stacks ---- */

/* Captures the caller's stack into ips (at most max frames), without the
 * library's own frames. Returns the depth, 0 when nothing could be taken. */
int mc_capture(uint64_t *ips, int max);
/* Remembers the library's own address range so mc_capture can drop it. */
void mc_capture_init(void);
struct dl_phdr_info;
/* The address range [*lo, *hi) of a loaded object's PT_LOAD segments. */
void mc_module_extent(const struct dl_phdr_info *info, uint64_t *lo, uint64_t *hi);
/* Non-zero when addr lies inside a module the mapping already records. */
int mc_capture_known(uint64_t addr);
/* Non-zero when a call came from libunwind (caller: a return address). */
int mc_capture_is_unwinder(const void *caller);

/* ---- cfi.c, unwind.c: the stack walk ---- */

/* A rule word (cfi.c): bits 0-1 the kind, then flags; bits 16-31 the
 * offset of the saved rbp from the CFA, bits 32-63 the CFA's offset. */
#define MC_RULE_OTHER      0ull /* not of the simple shape: ask libunwind */
#define MC_RULE_STEP       1ull
#define MC_RULE_END        2ull /* return address undefined: outermost */
#define MC_RULE_KIND(r)    ((r)&3ull)
#define MC_RULE_CFA_RBP    (1ull << 2) /* CFA = rbp + off (else rsp) */
#define MC_RULE_RBP_SAVED  (1ull << 3)
#define MC_RULE_RBP_LOST   (1ull << 4) /* the caller's rbp is undefined */
#define MC_RULE_RBP_OFF(r) ((int16_t)(uint16_t)((r) >> 16))
#define MC_RULE_CFA_OFF(r) ((uint64_t)(uint32_t)((r) >> 32))
/* The unwind rule of the instruction at ip, from its module's .eh_frame. */
uint64_t mc_cfi_rule(uint64_t ip);
/* Walks the caller's stack into ips (at most max return addresses, this
 * function's own frame left out); with stop_eval, ends before the first
 * frame in CPython's eval loop and sets *cut. Returns the depth, or -1
 * when a frame needs libunwind. */
int mc_unwind(uint64_t *ips, int max, int stop_eval, int *cut);
void mc_unwind_init(void);
/* MEMCREEP_UNWIND_CHECK: compare each walk with libunwind's. */
extern int mc_unwind_check_on; /* read inline on every capture */
void mc_unwind_check(const uint64_t *fast, int n, int fallback, void *const *slow, int m);

/* ---- stack_table.c: deduplicated stacks in the shared mapping ---- */

/* Finds or adds the stack and returns its slot; MC_STACK_OVERFLOW when the
 * table or the frame pool is full (counted in lost_stacks). Lock-free. */
uint32_t mc_stack_intern(const uint64_t *ips, int depth);
/* Notes that the stack's blocks are sampled with the given mean (bytes),
 * for the reader: a few sampled blocks are not growth. */
void mc_stack_mark_sampled(uint32_t slot, uint64_t mean);
/* Enters a stack already in its slot into the index of the mapping at base
 * (a forked child's copy). Returns 0, or -1 when the index has no room. */
int mc_stack_index_put(char *base, uint64_t hash, uint32_t slot);

/* ---- counters.c: per-stack counters through per-thread slabs ---- */

/* Adds an allocation to a stack's counters: bytes, and count in units of
 * 1/MC_COUNT_SCALE block (weights of sampled allocations are fractional). */
void mc_stack_alloc(uint32_t slot, size_t bytes, int64_t count);
/* Takes an allocation off a stack's counters (same units). */
void mc_stack_free(uint32_t slot, size_t bytes, int64_t count);
/* Counts one TCP connection at the caller's stack and in the header. The
 * caller holds the reentrancy guard. */
void mc_count_connect(void);
/* Counts one thread created by the stack in slot. */
void mc_count_thread(uint32_t slot);
/* Registers the thread-exit hook. Called once at start. */
void mc_counters_init(void);
/* Adds every slab's deltas to the counters of the mapping at h and frees
 * all slabs; for a forked child's copy, where only one thread is left. */
void mc_counters_fold(struct mc_shm_header *h);
/* Forgets this thread's slab (the child of a fork claims a new one). */
void mc_counters_forget_thread(void);

/* ---- fd_table.c: open descriptors by opening stack ---- */

/* Sets up the descriptor table with what this image inherited. Called
 * first thing in the constructor, when started by memcreep. */
void mc_fd_scan(void);
/* Counts the inherited descriptors in the new mapping. */
void mc_fd_start(void);
/* A new descriptor fd of the given kind (enum mc_fd_kind) opened by the
 * caller's stack. The caller holds the reentrancy guard. */
void mc_fd_opened(int fd, int kind);
/* newfd became a copy of oldfd (dup*, F_DUPFD): same kind, the caller's
 * stack. */
void mc_fd_duped(int oldfd, int newfd);
/* fd is about to be closed (or was replaced). */
void mc_fd_closed(int fd);
/* Every recorded descriptor in [first, last] is about to be closed. */
void mc_fd_closed_range(unsigned first, unsigned last);
/* Kind of an open descriptor, asked of the kernel (fstat, getsockopt). */
int mc_fd_kind_of(int fd);
/* Kind of a socket from socket()'s arguments. */
int mc_fd_socket_kind(int domain, int type);

/* ---- thread_hooks.c: threads by creating stack ---- */

/* Creates the key whose destructor sees threads exit. Called once. */
void mc_thread_start(void);
/* Resets what a thread of the parent may have held at fork. */
void mc_thread_after_fork(void);

/* ---- python.c: object counts and cycle garbage from CPython ---- */

/* The Python code the snapshot thread runs (python_code.c). */
extern const char mc_python_snapshot_src[];
/* Starts the snapshot thread when the program exports CPython's API.
 * Called once at start, after recording began. */
void mc_python_start(void);
/* Starts the thread again in a forked child (from its mapping copy). */
void mc_python_after_fork(void);
/* Notes, in the thread about to fork, whether it is the main thread. */
void mc_python_fork_prepare(void);
/* For a detach: takes line tracing, the collector callback and the
 * allocator wrappers out of the interpreter and ends the thread; waits for
 * that at most 3 s. */
void mc_python_stop(void);
/* 1 while the Python bridge's thread runs. */
int mc_python_bridge(void);

/* ---- attach.c, got.c: the library loaded into a running process ---- */

/* Finds the hooks in this library's symbol table and what each forwards
 * to. Returns how many can be routed. */
int mc_got_init(void);
/* Routes the loaded modules' GOT entries to the hooks (modules not seen
 * before only). Returns the entries routed by this call. */
int mc_got_patch(void);
/* How many entries are routed now. */
size_t mc_got_patched(void);
/* Puts back every entry mc_got_patch routed. */
void mc_got_unpatch(void);
/* The attach this instance serves: 0 under memcreep run, bumped at each
 * attach. What a thread keeps about the mapping (its counter slab, its
 * Python code slots) is dropped when it was kept for another one. */
extern uint32_t mc_attach_gen;
/* The generation as the hot paths compare it: only the attach library is
 * ever attached twice, so in the preloaded one it is the constant 0 and the
 * comparisons fold away. */
#ifdef MC_DYNAMIC_TLS
#define MC_ATTACH_GEN() mc_attach_gen
#else
#define MC_ATTACH_GEN() 0u
#endif
/* 1 once a detach began. */
int mc_attach_detaching(void);
/* A forked child of an attached process watches for itself. */
void mc_attach_after_fork(void);
/* Rereads the hooks' settings (sampling, depth) from mc_getenv. */
void mc_hooks_settings(void);
/* Forgets the object domain's recorded blocks (a detach). */
void mc_hooks_reset(void);
/* For a detach: the mapping is replaced by anonymous memory (a late hook
 * writes there harmlessly), so its file's pages can go. */
void mc_publish_release(void);

/* ---- python_frames.c: Python stacks in allocation hooks ---- */

/* Looks up what reading frames needs (at start; no Python call). */
void mc_py_frames_init(void);
/* 1 once the frame layout was checked against the interpreter. */
int mc_py_frames_on(void);
/* 1 when ip is in the interpreter's eval loop (_PyEval_EvalFrameDefault). */
int mc_py_is_eval(uint64_t ip);
/* Writes the calling thread's Python frames, innermost first, as tagged
 * values (MC_PYFRAME_TAG); returns how many (0 outside Python). */
int mc_py_frames(uint64_t *out, int max);

/* ---- ptr_table.c: live pointer -> (stack, size), private memory ---- */

/* Records a live block. Returns 0, or -1 when the table cannot grow. */
int mc_ptr_insert(uintptr_t ptr, size_t size, uint32_t slot);
/* Removes a block; fills *size and *slot and returns 0 when it was known,
 * -1 otherwise (allocated before the library started, or untracked). */
int mc_ptr_remove(uintptr_t ptr, size_t *size, uint32_t *slot);
/* Cheap check without the lock: 0 only when ptr is certainly not in the
 * table, 1 when it may be (then mc_ptr_remove decides). */
int mc_ptr_maybe_known(uintptr_t ptr);
/* Forgets every block (a detach): the tables stay, empty, their pages given
 * back to the kernel; new blocks get epoch 0. Takes each shard's lock in
 * turn. */
void mc_ptr_reset(void);
/* Locks every shard around fork() so the child gets a consistent table. */
/* The domain tags hooks.c puts in a block's size in the pointer table:
 * CPython's object domain (sampled), and a thread's allocation burst
 * (sampled). The size is what is below them. */
#define MC_TAG_OBJ   (1ull << 35)
#define MC_TAG_BURST (1ull << 34)

/* A live tracked block, as mc_ptr_highest_below returns it. */
struct mc_ptr_block {
    uintptr_t ptr;
    uint64_t size; /* bytes as recorded (capped, without domain bits) */
    uint32_t slot;
};
/* The max live tracked blocks with the highest addresses below limit,
 * highest first, into out. Returns how many were found. Takes each shard's
 * lock in turn: not for a hook, whose thread may hold one. */
int mc_ptr_highest_below(uintptr_t limit, struct mc_ptr_block *out, int max);
/* Makes epoch (clamped to MC_AGE_EPOCHS - 1) the epoch of new blocks. */
void mc_ptr_set_epoch(uint32_t epoch);
/* Calls add for every live tracked block: its address, stack slot, size as the
 * hooks tagged it (mc_hooks_weight gives its bytes) and its epoch. Takes
 * each shard's lock in turn: not for a hook. */
void mc_ptr_census(void (*add)(uintptr_t ptr, uint32_t slot, uint64_t tagged, uint32_t epoch,
                               void *arg),
                   void *arg);
void mc_ptr_lock_all(void);
void mc_ptr_unlock_all(void);
/* The memory the table holds now (whole pages), as own_bytes states it. */
size_t mc_ptr_bytes(void);

/* ---- sys.c: small helpers that never call malloc ---- */

void *mc_sys_alloc(size_t size); /* zeroed, page-granular, NULL on failure */
void mc_sys_free(void *p, size_t size);
uint64_t mc_now_ns(int clock);
/* Takes memcreep's settings for an attach ("NAME=value" lines): from then
 * on they come before the environment. Returns 0, -1 when too long. */
int mc_env_set_attach(const char *conf);
/* A setting: the attach's when given, else the environment's (getenv). */
const char *mc_getenv(const char *name);
/* Reads an unsigned decimal setting (mc_getenv), or returns dflt. */
uint64_t mc_env_u64(const char *name, uint64_t dflt);
/* Starts fn as a thread of the library's own (detached, signals blocked,
 * stack bytes of stack, counted in lib_threads while *running is 1; the
 * thread takes both back as it ends). Returns 0, or -1 when it could not. */
int mc_sys_thread(void *(*fn)(void *), size_t stack, int *running);
/* Reads a file of /proc (at most len - 1 bytes) into buf, NUL-terminated.
 * Returns the bytes read, -1 on failure. */
long mc_sys_read_proc(const char *path, char *buf, size_t len);
/* Writes a short diagnostic line to stderr (no malloc, no stdio). */
void mc_warn(const char *msg, const char *detail);

#endif
