/* room.c - making sure a page of the shared mapping has room behind it
 * before the library touches it.
 *
 * The mapping is a sparse file in the run directory (tmpfs, usually). A
 * page of it gets its memory at the first touch; when the file system is
 * full (Docker's default /dev/shm is 64 MB) that touch is a SIGBUS in the
 * program. So every region is committed before its first use with
 * madvise(MADV_POPULATE_WRITE) (Linux 5.14), which fails with an error
 * instead of raising the signal; a bitmap of committed pages, private to
 * the process, keeps that to one system call per page. When there is no
 * room the caller drops what it was about to record and counts it
 * (room_lost in the header): data is lost, never the program. On an older
 * kernel the whole file is allocated up front with posix_fallocate (see
 * mc_room_init). */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static char *base;
static uint64_t pages;
static uint64_t *bits; /* one bit per page of the file, set once committed */
static size_t bits_size;
static long page_size = 4096;

/* Commits pages [first, last] that are not yet committed. */
static uint64_t committed; /* pages of the current file committed */

/* Publishes the committed bytes in the header, once the file being
 * committed is the process' own mapping (not a child's copy in the
 * making, while mc_shm is still the parent's). */
static void publish_committed(void)
{
    if (mc_shm && (const char *)mc_shm == base) {
        __atomic_store_n(&mc_shm->room_bytes, committed * (uint64_t)page_size, __ATOMIC_RELAXED);
    }
}

static int commit_pages(uint64_t first, uint64_t last)
{
    for (uint64_t p = first; p <= last; p++) {
        if (__atomic_load_n(&bits[p / 64], __ATOMIC_ACQUIRE) & (1ull << (p % 64))) continue;
        /* The run of uncommitted pages from p, in one call. */
        uint64_t q = p;
        while (q + 1 <= last &&
               !(__atomic_load_n(&bits[(q + 1) / 64], __ATOMIC_ACQUIRE) & (1ull << ((q + 1) % 64))))
            q++;
        if (madvise(base + p * (uint64_t)page_size, (q - p + 1) * (uint64_t)page_size,
                    MADV_POPULATE_WRITE) != 0)
            return -1;
        for (uint64_t k = p; k <= q; k++)
            if (!(__atomic_fetch_or(&bits[k / 64], 1ull << (k % 64), __ATOMIC_RELEASE) &
                  (1ull << (k % 64))))
                __atomic_fetch_add(&committed, 1, __ATOMIC_RELAXED);
        p = q;
    }
    return 0;
}

int mc_room_init(void *map, uint64_t size, int fd)
{
    page_size = sysconf(_SC_PAGESIZE);
    if (page_size <= 0) page_size = 4096;
    uint64_t n = (size + (uint64_t)page_size - 1) / (uint64_t)page_size;
    size_t need = (size_t)((n + 63) / 64 * 8);
    if (bits && bits_size < need) {
        mc_sys_free(bits, bits_size);
        bits = NULL;
    }
    if (!bits) {
        bits_size = (need + (size_t)page_size - 1) & ~(size_t)(page_size - 1);
        bits = mc_sys_alloc(bits_size);
        if (!bits) return -1;
    } else {
        __builtin_memset(bits, 0, bits_size);
    }
    base = map;
    pages = n;
    committed = 0;
    if (madvise(map, (size_t)page_size, MADV_POPULATE_WRITE) == 0) {
        bits[0] |= 1;
        committed = 1;
        return 0;
    }
    if (errno != EINVAL) return -1; /* no room even for the header */
    /* A kernel without MADV_POPULATE_WRITE: the whole file now, or not at
     * all. */
    if (fd < 0 || posix_fallocate(fd, 0, (off_t)size) != 0) return -1;
    for (uint64_t p = 0; p < n; p++)
        bits[p / 64] |= 1ull << (p % 64);
    committed = n;
    return 0;
}

void mc_room_rebase(void *map)
{
    base = map;
    publish_committed();
}

int mc_room_commit(const void *p, uint64_t len)
{
    if (MC_UNLIKELY(!bits || !len)) return bits ? 0 : -1;
    uint64_t off = (uint64_t)((const char *)p - base);
    uint64_t first = off / (uint64_t)page_size, last = (off + len - 1) / (uint64_t)page_size;
    if (MC_UNLIKELY(last >= pages)) return -1;
    /* The common case: one page, already there. */
    if (MC_LIKELY(first == last &&
                  (__atomic_load_n(&bits[first / 64], __ATOMIC_ACQUIRE) & (1ull << (first % 64)))))
        return 0;
    if (commit_pages(first, last) == 0) {
        publish_committed();
        return 0;
    }
    if (mc_shm) __atomic_fetch_add(&mc_shm->room_lost, 1, __ATOMIC_RELAXED);
    return -1;
}
