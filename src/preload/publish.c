/* publish.c - the shared mapping of this process: creating it at start,
 * giving a forked child its own copy, marking the image an exec replaced,
 * publishing the module list and the allocator's own statistics, and the
 * final state at exit.
 *
 * Everything here runs either in the library constructor (before recording
 * starts) or inside a hook with the reentrancy guard held, and uses only
 * system calls and functions that do not allocate. */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

struct mc_shm_header *mc_shm;
int mc_active;
struct mc_shm_header mc_lay;

/* A copy, not getenv's pointer: programs that set their process title
 * (nginx, postgres) write over the original environment strings. */
static char run_dir[4096];
static size_t map_size;
/* 0: the mapping is ours; 1: forked, copy pending; 2: copy in progress. */
static int fork_state;
static int modules_busy;
/* The process the mapping and the descriptor table describe. A child made
 * by vfork shares both with its parent but is another process: its
 * descriptor calls between vfork and exec must not count. */
static pid_t owner_pid;
static int mallinfo_busy;

/* Sizes of the parts of the mapping, each rounded to 64 bytes. */
#define ALIGN64(x) (((x) + 63) & ~(uint64_t)63)

static uint64_t round_pow2(uint64_t v, uint64_t lo, uint64_t hi)
{
    uint64_t p = lo;
    while (p < v && p < hi)
        p <<= 1;
    return p;
}

/* Formats "<dir>/p<pid>-<n>.map" into buf without stdio's allocation. */
static void map_path(char *buf, size_t len, const char *dir, pid_t pid, unsigned n)
{
    snprintf(buf, len, "%s/p%d-%u.map", dir, (int)pid, n);
}

/* Marks the files an earlier image of this pid left (it called exec and
 * became us) as superseded, so the reader knows that image ended by exec. */
static void supersede_old_images(pid_t pid)
{
    char prefix[32];
    int plen = snprintf(prefix, sizeof(prefix), "p%d-", (int)pid);
    DIR *d = opendir(run_dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, prefix, (size_t)plen) != 0) continue;
        int fd = openat(dirfd(d), de->d_name, O_RDWR | O_CLOEXEC);
        if (fd < 0) continue;
        void *m =
            mmap(NULL, sizeof(struct mc_shm_header), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (m == MAP_FAILED) continue;
        struct mc_shm_header *h = m;
        if (h->magic == MC_SHM_MAGIC && h->state == MC_PROC_RUNNING)
            __atomic_store_n(&h->state, MC_PROC_EXECED, __ATOMIC_RELEASE);
        munmap(m, sizeof(struct mc_shm_header));
    }
    closedir(d);
}

/* Creates this pid's next free map file at the given size, its name in
 * path. Returns the fd, or -1 with errno set. */
static int create_map_file(pid_t pid, size_t size, char *path, size_t plen)
{
    for (unsigned n = 0; n < 1000; n++) {
        map_path(path, plen, run_dir, pid, n);
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST) continue;
        if (fd < 0) return -1;
        if (ftruncate(fd, (off_t)size) != 0) {
            int e = errno;
            close(fd);
            unlink(path);
            errno = e;
            return -1;
        }
        return fd;
    }
    errno = EEXIST;
    return -1;
}

/* ---- modules ---- */

static void read_build_id(const struct dl_phdr_info *info, struct mc_shm_module *m)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE) continue;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
        const char *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            const char *name = p + sizeof(*nh);
            const char *desc = name + ((nh->n_namesz + 3) & ~3u);
            const char *next = desc + ((nh->n_descsz + 3) & ~3u);
            if (next > end) break;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
                uint32_t n = nh->n_descsz > MC_BUILD_ID_MAX ? MC_BUILD_ID_MAX : nh->n_descsz;
                memcpy(m->build_id, desc, n);
                m->build_id_len = n;
                return;
            }
            p = next;
        }
    }
}

/* dl_iterate_phdr callback: appends objects not yet in the table. */
static int add_module(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    uint64_t lo, hi;
    mc_module_extent(info, &lo, &hi);
    if (hi == 0) return 0;

    struct mc_shm_module *tab = (struct mc_shm_module *)((char *)mc_shm + mc_lay.off_modules);
    uint64_t n = mc_shm->module_count;
    if (n > mc_lay.module_cap) n = mc_lay.module_cap;
    for (uint64_t i = 0; i < n; i++)
        if (tab[i].lo == lo && tab[i].hi == hi && tab[i].bias == info->dlpi_addr) return 0;
    if (n >= mc_lay.module_cap) return 1;

    struct mc_shm_module *m = &tab[n];
    if (mc_room_commit(m, sizeof(*m)) != 0) return 1;
    memset(m, 0, sizeof(*m));
    m->bias = info->dlpi_addr;
    m->lo = lo;
    m->hi = hi;
    const char *name = info->dlpi_name;
    if (!name || !*name) {
        /* The main program has no name here; /proc says which file it is. */
        ssize_t l = readlink("/proc/self/exe", m->path, sizeof(m->path) - 1);
        m->path[l > 0 ? l : 0] = 0;
    } else {
        strncpy(m->path, name, sizeof(m->path) - 1);
    }
    read_build_id(info, m);
    __atomic_store_n(&mc_shm->module_count, n + 1, __ATOMIC_RELEASE);
    return 0;
}

void mc_publish_modules(void)
{
    if (__atomic_exchange_n(&modules_busy, 1, __ATOMIC_ACQUIRE)) return;
    dl_iterate_phdr(add_module, NULL);
    __atomic_store_n(&modules_busy, 0, __ATOMIC_RELEASE);
}

/* ---- allocator statistics ---- */

void mc_publish_mallinfo(void)
{
    uint64_t now = mc_now_ns(CLOCK_MONOTONIC_COARSE);
    if (mc_shm->mi_update_ns && now - mc_shm->mi_update_ns < 500000000ull) return;
    if (__atomic_exchange_n(&mallinfo_busy, 1, __ATOMIC_ACQUIRE)) return;
    struct mallinfo2 mi = mallinfo2();
    mc_shm->mi_arena = mi.arena;
    mc_shm->mi_hblkhd = mi.hblkhd;
    mc_shm->mi_uordblks = mi.uordblks;
    mc_shm->mi_fordblks = mi.fordblks;
    mc_shm->mi_keepcost = mi.keepcost;
    __atomic_store_n(&mc_shm->mi_update_ns, now ? now : 1, __ATOMIC_RELEASE);
    __atomic_store_n(&mallinfo_busy, 0, __ATOMIC_RELEASE);
}

void mc_publish_trim(void)
{
    mc_rest_poll();
    uint64_t want = __atomic_load_n(&mc_shm->trim_request, __ATOMIC_ACQUIRE);
    if (MC_LIKELY(want == mc_shm->trim_done) || mc_rest_running()) return;
    if (__atomic_exchange_n(&mallinfo_busy, 1, __ATOMIC_ACQUIRE)) return;
    mc_rest_serve(want, 0, 0);
    __atomic_store_n(&mallinfo_busy, 0, __ATOMIC_RELEASE);
}

/* ---- fork ---- */

static void at_fork_prepare(void)
{
    if (!mc_active) return;
    mc_python_fork_prepare();
    mc_ptr_lock_all();
}

static void at_fork_parent(void)
{
    if (mc_active) mc_ptr_unlock_all();
}

/* The child still shares the parent's mapping; it must not write to it.
 * The copy is made at the child's first event, not here, so that the common
 * fork-then-exec pays nothing. */
static void at_fork_child(void)
{
    owner_pid = getpid();
    if (!mc_active) return;
    mc_thread_after_fork();
    mc_ptr_unlock_all();
    __atomic_store_n(&fork_state, 1, __ATOMIC_RELEASE);
}

/* Gives a forked child a file of its own holding a copy of what it
 * inherited (its heap is a copy of the parent's, so are the counters), then
 * maps it over the old address so every pointer stays valid. */
static int remap_for_child(void)
{
    pid_t pid = getpid();
    char path[4096];
    int fd = create_map_file(pid, map_size, path, sizeof(path));
    if (fd < 0) return -1;
    char *dst = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (dst == MAP_FAILED) {
        close(fd);
        unlink(path);
        return -1;
    }
    const char *src = (const char *)mc_shm;
    const struct mc_shm_header *h = mc_shm;
    /* Every part copied needs room in the new file first (room.c). */
    if (mc_room_init(dst, map_size, fd) != 0 ||
        mc_room_commit(dst + mc_lay.off_stacks, sizeof(struct mc_shm_stack)) != 0 ||
        mc_room_commit(dst + mc_lay.off_stack_ext, sizeof(struct mc_shm_stack_ext)) != 0)
        goto no_room;
    memcpy(dst, src, sizeof(*h));
    struct mc_shm_header *nh = (struct mc_shm_header *)dst;
    nh->pid = pid;
    nh->ppid = getppid();
    nh->state = MC_PROC_RUNNING;
    nh->start_ns = mc_now_ns(CLOCK_REALTIME);

    /* Only used parts are copied: the file is sparse and should stay so. */
    uint64_t count = h->stack_count < mc_lay.stack_cap ? h->stack_count : mc_lay.stack_cap;
    const uint32_t *list = (const uint32_t *)(src + mc_lay.off_stack_list);
    const struct mc_shm_stack *st = (const struct mc_shm_stack *)(src + mc_lay.off_stacks);
    struct mc_shm_stack *dst_st = (struct mc_shm_stack *)(dst + mc_lay.off_stacks);
    const struct mc_shm_stack_ext *ext =
        (const struct mc_shm_stack_ext *)(src + mc_lay.off_stack_ext);
    struct mc_shm_stack_ext *dst_ext = (struct mc_shm_stack_ext *)(dst + mc_lay.off_stack_ext);
    dst_st[MC_STACK_OVERFLOW] = st[MC_STACK_OVERFLOW];
    dst_ext[MC_STACK_OVERFLOW] = ext[MC_STACK_OVERFLOW];
    for (uint64_t i = 0; i < count; i++) {
        uint32_t s = list[i];
        if (s == 0 || s > mc_lay.stack_cap || !st[s - 1].ready) continue;
        if (mc_room_commit(&dst_st[s - 1], sizeof(*dst_st)) != 0 ||
            mc_room_commit(&dst_ext[s - 1], sizeof(*dst_ext)) != 0)
            goto no_room;
        dst_st[s - 1] = st[s - 1];
        dst_ext[s - 1] = ext[s - 1];
        /* The index is rebuilt from what was listed: the slots stay. */
        if (mc_stack_index_put(dst, st[s - 1].hash, s - 1) != 0) goto no_room;
    }
    uint64_t frames = h->frames_used < mc_lay.frame_cap ? h->frames_used : mc_lay.frame_cap;
    uint64_t pyn = h->py_types_used < mc_lay.py_cap ? h->py_types_used : mc_lay.py_cap;
    uint64_t pyl = h->py_lines_used < mc_lay.py_lines_cap ? h->py_lines_used : mc_lay.py_lines_cap;
    uint64_t pys = h->py_socks_used < mc_lay.py_socks_cap ? h->py_socks_used : mc_lay.py_socks_cap;
    /* The parent's threads are not in the child: what their slabs held
     * becomes part of the counters, and every slab is free again. */
    uint32_t used = h->threads_used < mc_lay.thread_cap ? h->threads_used : mc_lay.thread_cap;
    const struct {
        uint64_t off, len;
    } parts[] = {{mc_lay.off_stack_list, count * sizeof(uint32_t)},
                 {mc_lay.off_frames, frames * sizeof(uint64_t)},
                 {mc_lay.off_modules,
                  (h->module_count < mc_lay.module_cap ? h->module_count : mc_lay.module_cap) *
                      sizeof(struct mc_shm_module)},
                 {mc_lay.off_py_types, pyn * sizeof(struct mc_shm_pytype)},
                 {mc_lay.off_py_lines, pyl * sizeof(struct mc_shm_pyline)},
                 {mc_lay.off_py_socks, pys * sizeof(struct mc_shm_pyline)},
                 {mc_lay.off_threads, used * sizeof(struct mc_shm_thread)}};
    for (size_t k = 0; k < sizeof(parts) / sizeof(parts[0]); k++) {
        if (mc_room_commit(dst + parts[k].off, parts[k].len) != 0) goto no_room;
        memcpy(dst + parts[k].off, src + parts[k].off, parts[k].len);
    }
    /* Code objects: the slots in use only (open addressing, sparse). */
    const struct mc_shm_pycode *pc = (const struct mc_shm_pycode *)(src + mc_lay.off_py_codes);
    struct mc_shm_pycode *dst_pc = (struct mc_shm_pycode *)(dst + mc_lay.off_py_codes);
    for (uint32_t i = 0; i < mc_lay.py_codes_cap; i++) {
        if (!pc[i].key) continue;
        if (mc_room_commit(&dst_pc[i], sizeof(dst_pc[i])) != 0) goto no_room;
        dst_pc[i] = pc[i];
    }
    mc_counters_fold(nh);
    munmap(dst, map_size);

    void *m = mmap(mc_shm, map_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
    close(fd);
    mc_counters_forget_thread();
    if (m == MAP_FAILED) return -1;
    mc_room_rebase(m);
    mc_python_after_fork();
    mc_rest_after_fork();
    mc_attach_after_fork();
    return 0;
no_room:
    munmap(dst, map_size);
    close(fd);
    unlink(path);
    errno = ENOSPC;
    return -1;
}

const char *mc_publish_run_dir(void)
{
    return run_dir;
}

int mc_publish_owner(void)
{
    return getpid() == owner_pid;
}

int mc_publish_own(void)
{
    int st = __atomic_load_n(&fork_state, __ATOMIC_ACQUIRE);
    if (MC_LIKELY(st == 0)) return 0;
    int expect = 1;
    if (!__atomic_compare_exchange_n(&fork_state, &expect, 2, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return -1; /* another thread of the child is copying: skip */
    if (remap_for_child() != 0) {
        /* Without a mapping of its own the child must not record at all. */
        mc_active = 0;
        mc_warn("cannot publish forked child, not tracking it", strerror(errno));
        return -1;
    }
    __atomic_store_n(&fork_state, 0, __ATOMIC_RELEASE);
    return 0;
}

/* ---- life cycle ---- */

/* Called once from the library constructor. Leaves mc_active at 0 (the
 * hooks pass everything through) when not started by memcreep or when the
 * mapping cannot be made. */
void mc_publish_start(void)
{
    const char *dir = mc_getenv("MEMCREEP_DIR");
    if (!dir || !*dir || strlen(dir) >= sizeof(run_dir)) return;
    memcpy(run_dir, dir, strlen(dir) + 1);

    uint64_t depth = mc_env_u64("MEMCREEP_DEPTH", MC_DEFAULT_DEPTH);
    if (depth < 1) depth = 1;
    if (depth > MC_MAX_DEPTH) depth = MC_MAX_DEPTH;
    uint64_t cap = round_pow2(mc_env_u64("MEMCREEP_STACKS", 65536), 1024, 1u << 24);
    uint64_t frame_cap = cap * 32;
    uint64_t module_cap = 2048;
    uint64_t thread_cap = mc_env_u64("MEMCREEP_THREADS", 1024);
    if (thread_cap < 1) thread_cap = 1;
    if (thread_cap > 65536) thread_cap = 65536;

    uint64_t off_stacks = ALIGN64(sizeof(struct mc_shm_header));
    uint64_t off_list = ALIGN64(off_stacks + cap * sizeof(struct mc_shm_stack));
    uint64_t off_index = ALIGN64(off_list + cap * sizeof(uint32_t));
    uint64_t off_frames = ALIGN64(off_index + cap * sizeof(uint64_t));
    uint64_t off_modules = ALIGN64(off_frames + frame_cap * sizeof(uint64_t));
    uint64_t off_threads = ALIGN64(off_modules + module_cap * sizeof(struct mc_shm_module));
    uint64_t off_ext = ALIGN64(off_threads + thread_cap * sizeof(struct mc_shm_thread));
    uint64_t py_cap = 1024;
    uint64_t off_py = ALIGN64(off_ext + cap * sizeof(struct mc_shm_stack_ext));
    uint64_t py_lines_cap = 256;
    uint64_t off_pyl = ALIGN64(off_py + py_cap * sizeof(struct mc_shm_pytype));
    uint64_t py_socks_cap = 64;
    uint64_t off_pys = ALIGN64(off_pyl + py_lines_cap * sizeof(struct mc_shm_pyline));
    uint64_t py_codes_cap = 16384;
    uint64_t off_pyc = ALIGN64(off_pys + py_socks_cap * sizeof(struct mc_shm_pyline));
    uint64_t size = ALIGN64(off_pyc + py_codes_cap * sizeof(struct mc_shm_pycode));
    long page = sysconf(_SC_PAGESIZE);
    size = (size + (uint64_t)page - 1) & ~((uint64_t)page - 1);

    pid_t pid = getpid();
    owner_pid = pid;
    fork_state = 0;
    supersede_old_images(pid);
    char path[4096];
    int fd = create_map_file(pid, size, path, sizeof(path));
    if (fd < 0) {
        mc_warn("cannot create the shared mapping, not tracking", strerror(errno));
        return;
    }
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        mc_warn("cannot map the shared mapping, not tracking", strerror(errno));
        close(fd);
        return;
    }
    /* The header and the overflow slot (and its extension) first: without
     * room for them nothing is tracked, and the program runs on. */
    if (mc_room_init(m, size, fd) != 0 ||
        mc_room_commit((char *)m + off_stacks, sizeof(struct mc_shm_stack)) != 0 ||
        mc_room_commit((char *)m + off_ext, sizeof(struct mc_shm_stack_ext)) != 0) {
        mc_warn("no room in the run directory for the shared mapping, not tracking", NULL);
        close(fd);
        munmap(m, size);
        unlink(path);
        return;
    }
    close(fd);
    struct mc_shm_header *h = m;
    h->version = MC_SHM_VERSION;
    h->header_size = sizeof(*h);
    h->file_size = size;
    h->pid = pid;
    h->ppid = getppid();
    h->state = MC_PROC_RUNNING;
    h->max_depth = (uint32_t)depth;
    h->start_ns = mc_now_ns(CLOCK_REALTIME);
    h->stack_cap = (uint32_t)cap;
    h->module_cap = (uint32_t)module_cap;
    h->frame_cap = frame_cap;
    h->off_stacks = off_stacks;
    h->off_stack_list = off_list;
    h->off_stack_index = off_index;
    h->off_frames = off_frames;
    h->off_modules = off_modules;
    h->off_threads = off_threads;
    h->thread_cap = (uint32_t)thread_cap;
    h->off_stack_ext = off_ext;
    h->off_py_types = off_py;
    h->py_cap = (uint32_t)py_cap;
    h->off_py_lines = off_pyl;
    h->py_lines_cap = (uint32_t)py_lines_cap;
    h->off_py_socks = off_pys;
    h->py_socks_cap = (uint32_t)py_socks_cap;
    h->off_py_codes = off_pyc;
    h->py_codes_cap = (uint32_t)py_codes_cap;
    h->sample_bytes = mc_env_u64("MEMCREEP_SAMPLE_BYTES", 0);
    ssize_t l = readlink("/proc/self/exe", h->exe, sizeof(h->exe) - 1);
    h->exe[l > 0 ? l : 0] = 0;
    mc_lay = *h;
    struct mc_shm_stack *ov = (struct mc_shm_stack *)((char *)m + off_stacks);
    ov->hash = 1;
    ov->ready = 1;
    map_size = size;
    mc_shm = h;
    mc_room_rebase(m); /* publishes what is committed so far */
    mc_publish_modules();
    mc_publish_mallinfo();
    /* The magic goes last: a reader that sees it sees a complete header. */
    __atomic_store_n(&h->magic, MC_SHM_MAGIC, __ATOMIC_RELEASE);
    static int forks_hooked; /* once: an attach after a detach keeps them */
    if (!forks_hooked++) pthread_atfork(at_fork_prepare, at_fork_parent, at_fork_child);
    mc_counters_init();
    mc_fd_start();
    mc_thread_start();
    mc_active = 1;
    mc_rest_arm();
    mc_python_start();
}

/* Called from the library destructor: publishes the final allocator
 * statistics and that this image reached its exit path. */
void mc_publish_stop(void);
void mc_publish_stop(void)
{
    if (!mc_active || __atomic_load_n(&fork_state, __ATOMIC_ACQUIRE) != 0) return;
    mc_shm->mi_update_ns = 0;
    mc_publish_mallinfo();
    __atomic_store_n(&mc_shm->state, MC_PROC_EXITED, __ATOMIC_RELEASE);
}

void mc_publish_release(void)
{
    if (!mc_shm || !map_size) return;
    mmap(mc_shm, map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}
