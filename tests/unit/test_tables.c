/* test_tables.c - the preloaded library's two tables, outside any target:
 * the live-pointer table against a reference, and the stack table's
 * deduplication, counters, overflow and concurrent inserts. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/shm_reader.h"
#include "preload/internal.h"
#include "shm_fixture.h"

/* What the tables need from the rest of the library. */
struct mc_shm_header *mc_shm;
struct mc_shm_header mc_lay;
int mc_active = 1;
uint32_t mc_attach_gen;
void mc_publish_modules(void) {}
void mc_hooks_own(int on)
{
    (void)on;
}
const char *mc_publish_run_dir(void)
{
    return "";
}
int mc_publish_own(void)
{
    return 0;
}
int mc_capture(uint64_t *ips, int max)
{
    (void)ips;
    (void)max;
    return 0;
}
int mc_capture_known(uint64_t addr)
{
    (void)addr;
    return 1;
}

static void ptr_table_matches_reference(void **state)
{
    (void)state;
    enum { N = 200000 };
    static uintptr_t ptrs[N];
    size_t size;
    uint32_t slot;
    for (int i = 0; i < N; i++) {
        /* Page-aligned and 16-aligned addresses mixed: the hash must
         * spread both. */
        ptrs[i] =
            (i % 3 ? 0x7f0000000000ull + (uintptr_t)i * 4096 : 0x5500000000ull + (uintptr_t)i * 16);
        assert_int_equal(mc_ptr_insert(ptrs[i], (size_t)i + 1, (uint32_t)(i % 5000)), 0);
    }
    for (int i = 0; i < N; i += 2) {
        assert_int_equal(mc_ptr_remove(ptrs[i], &size, &slot), 0);
        assert_true(size == (size_t)i + 1 && slot == (uint32_t)(i % 5000));
    }
    for (int i = 0; i < N; i++) {
        int rc = mc_ptr_remove(ptrs[i], &size, &slot);
        if (i % 2 == 0) {
            assert_int_equal(rc, -1); /* already gone */
        } else {
            assert_int_equal(rc, 0);
            assert_true(size == (size_t)i + 1);
        }
    }
    assert_int_equal(mc_ptr_remove(12345, &size, &slot), -1);
}

/* What the table takes per live block: 12-byte entries kept between 1/2
 * and 3/4 full, so 16 to 24 bytes a block, plus the shards' first pages. */
static void ptr_table_memory_bound(void **state)
{
    (void)state;
    enum { N = 1000000 };
    size_t before = mc_ptr_bytes(), size;
    uint32_t slot;
    for (int i = 0; i < N; i++)
        assert_int_equal(mc_ptr_insert(0x560000000000ull + (uintptr_t)i * 32, 32, 3), 0);
    size_t bytes = mc_ptr_bytes() - before;
    assert_true(bytes >= (size_t)N * 12 && bytes <= (size_t)N * 24 + (2u << 20));
    for (int i = 0; i < N; i++)
        assert_int_equal(mc_ptr_remove(0x560000000000ull + (uintptr_t)i * 32, &size, &slot), 0);
}

static void census_sum(uintptr_t ptr, uint32_t slot, uint64_t tagged, uint32_t epoch, void *arg)
{
    (void)ptr, (void)slot, (void)epoch;
    *(uint64_t *)arg += tagged & (MC_TAG_BURST - 1);
}

/* Sizes of every width keep their domain tags and come back exact: those
 * of 4 MiB and more through the list of big blocks, which a stale entry
 * replaced by a small block leaves. Addresses the entry cannot hold are
 * refused, not aliased. */
static void ptr_table_sizes_and_tags(void **state)
{
    (void)state;
    const uint64_t sizes[] = {1, (1u << 22) - 2, (1u << 22) - 1, 5u << 20, 1ull << 33};
    const uint64_t tags[] = {0, MC_TAG_OBJ, MC_TAG_BURST, MC_TAG_OBJ, MC_TAG_BURST};
    size_t size;
    uint32_t slot;
    uint64_t want = 0, got = 0;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(mc_ptr_insert(0x7e0000000000ull + i * 16, sizes[i] | tags[i], 77 + i), 0);
        want += sizes[i];
    }
    mc_ptr_census(census_sum, &got);
    assert_true(got == want);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(mc_ptr_remove(0x7e0000000000ull + i * 16, &size, &slot), 0);
        assert_true(size == (sizes[i] | tags[i]) && slot == 77u + (uint32_t)i);
    }
    /* A big block's address reused, unseen, by a small one. */
    assert_int_equal(mc_ptr_insert(0x7e0000001000ull, 9u << 20, 1), 0);
    assert_int_equal(mc_ptr_insert(0x7e0000001000ull, 100, 2), 0);
    assert_int_equal(mc_ptr_remove(0x7e0000001000ull, &size, &slot), 0);
    assert_true(size == 100 && slot == 2);
    for (int i = 0; i < 5000; i++) /* more big blocks than the list holds */
        mc_ptr_insert(0x7d0000000000ull + (uintptr_t)i * 16, 8u << 20, 3);
    int back = 0;
    for (int i = 0; i < 5000; i++)
        if (mc_ptr_remove(0x7d0000000000ull + (uintptr_t)i * 16, &size, &slot) == 0) {
            assert_true(size == 8u << 20);
            back++;
        }
    assert_int_equal(back, 4096);
    assert_int_equal(mc_ptr_insert(0x1008, 10, 1), -1);
    assert_int_equal(mc_ptr_insert(1ull << 48, 10, 1), -1);
    assert_int_equal(mc_ptr_maybe_known(0x1008), 0);
}

static void ptr_table_replaces_stale_entry(void **state)
{
    (void)state;
    size_t size;
    uint32_t slot;
    assert_int_equal(mc_ptr_insert(0x1000, 10, 1), 0);
    assert_int_equal(mc_ptr_insert(0x1000, 20, 2), 0);
    assert_int_equal(mc_ptr_remove(0x1000, &size, &slot), 0);
    assert_true(size == 20 && slot == 2);
    assert_int_equal(mc_ptr_remove(0x1000, &size, &slot), -1);
}

static size_t shm_size;

static int setup_shm(void **state)
{
    mc_shm = shm_fixture(1024, 1024 * 8, &shm_size);
    mc_lay = *mc_shm;
    assert_int_equal(mc_room_init(mc_shm, shm_size, -1), 0);
    mc_counters_forget_thread();
    *state = mc_shm;
    return 0;
}

/* Every stack's value as the memcreep side reads it. */
static struct mc_stack_value *snapshot(void)
{
    static struct mc_stack_value vals[1024];
    struct mc_map m = {(const char *)mc_shm, shm_size, mc_shm, *mc_shm};
    uint64_t listed;
    assert_int_equal(mc_map_snapshot(&m, vals, &listed), 0);
    assert_int_equal(listed, mc_shm->stack_count);
    return vals;
}

static int teardown_shm(void **state)
{
    free(*state);
    mc_shm = NULL;
    return 0;
}

static void stacks_dedupe_and_count(void **state)
{
    (void)state;
    uint64_t a[3] = {0x401000, 0x402000, 0x403000}, b[3] = {0x401000, 0x402000, 0x403001};
    uint32_t sa = mc_stack_intern(a, 3), sb = mc_stack_intern(b, 3);
    assert_true(sa != MC_STACK_OVERFLOW && sb != MC_STACK_OVERFLOW && sa != sb);
    /* Slots are dense, in the order first seen: what a run touches grows
     * with the stacks it met, not with the table's capacity. */
    assert_true(sa == 1 && sb == 2);
    assert_int_equal(mc_stack_intern(a, 3), sa);
    assert_int_equal(mc_stack_intern(a, 2) == sa, 0); /* a prefix is another stack */
    mc_stack_alloc(sa, 100, MC_COUNT_SCALE);
    mc_stack_alloc(sa, 50, MC_COUNT_SCALE);
    mc_stack_free(sa, 100, MC_COUNT_SCALE);
    struct mc_stack_value *v = snapshot();
    assert_true(v[sa].live_bytes == 50 && v[sa].live_count == 1 && v[sa].allocs == 2 &&
                v[sa].alloc_bytes == 150);
    /* A stack that maps to the same slab entry evicts sa's deltas into its
     * counters: the value read stays the same. */
    uint64_t c[3] = {0x401000, 0x402000, 0x403000};
    uint32_t sc = 0;
    for (uint64_t i = 0; i < 5000 && sc == 0; i++) {
        c[2] = 0x500000 + i;
        uint32_t s = mc_stack_intern(c, 3);
        if (s % MC_SLAB_ENTRIES == sa % MC_SLAB_ENTRIES && s != sa) sc = s;
    }
    assert_true(sc != 0);
    mc_stack_alloc(sc, 7, MC_COUNT_SCALE);
    v = snapshot();
    assert_true(v[sa].live_bytes == 50 && v[sa].live_count == 1 && v[sc].live_bytes == 7);
    struct mc_shm_stack *st = (struct mc_shm_stack *)((char *)mc_shm + mc_shm->off_stacks) + sa;
    assert_true(st->live_bytes == 50); /* now in the counters themselves */
    assert_int_equal(MC_FRAMES_DEPTH(st->frames), 3);
    assert_int_equal(mc_stack_intern(a, 0), MC_STACK_OVERFLOW);
}

static void stacks_overflow_when_full(void **state)
{
    (void)state;
    uint32_t over = 0;
    for (uint64_t i = 0; i < 2000; i++) {
        uint64_t f[2] = {0x1000 + i, 0x2000};
        if (mc_stack_intern(f, 2) == MC_STACK_OVERFLOW) over++;
    }
    /* Capacity 1024 at load factor 3/4. */
    assert_true(mc_shm->stack_count <= 768 && mc_shm->stack_count >= 760);
    assert_true(over >= 2000 - 768 && mc_shm->lost_stacks == over);
    /* Every stack that got a slot is still found there. */
    for (uint64_t i = 0, found = 0; i < 2000; i++) {
        uint64_t f[2] = {0x1000 + i, 0x2000};
        uint32_t s = mc_stack_intern(f, 2);
        if (s != MC_STACK_OVERFLOW) assert_true(s == ++found);
    }
}

#define THREADS  4
#define DISTINCT 300

static void *intern_many(void *arg)
{
    (void)arg;
    for (int round = 0; round < 50; round++)
        for (uint64_t i = 0; i < DISTINCT; i++) {
            uint64_t f[4] = {0x7000 + i, 0x8000 + i * 3, 0x9000, 0xa000 + (i & 7)};
            uint32_t s = mc_stack_intern(f, 4);
            if (s != MC_STACK_OVERFLOW) mc_stack_alloc(s, 8, MC_COUNT_SCALE);
        }
    return NULL;
}

static void stacks_concurrent_inserts(void **state)
{
    (void)state;
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, intern_many, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(mc_shm->stack_count, DISTINCT);
    assert_int_equal(mc_shm->lost_stacks, 0);
    const uint32_t *list = (const uint32_t *)((char *)mc_shm + mc_shm->off_stack_list);
    struct mc_stack_value *v = snapshot();
    int64_t total = 0;
    for (int i = 0; i < DISTINCT; i++) {
        assert_true(list[i] > 0);
        total += v[list[i] - 1].live_bytes;
    }
    assert_true(total == (int64_t)THREADS * 50 * DISTINCT * 8);
}

/* A detach forgets every block (the next attach starts from nothing), and
 * the table keeps working after it: inserts, finds, removes. */
static void ptr_table_reset_forgets_all(void **state)
{
    (void)state;
    enum { N = 20000 };
    size_t size;
    uint32_t slot;
    for (int i = 0; i < N; i++)
        assert_int_equal(mc_ptr_insert(0x600000000000ull + (uintptr_t)i * 48, 64, 7), 0);
    mc_ptr_reset();
    for (int i = 0; i < N; i++)
        assert_int_equal(mc_ptr_remove(0x600000000000ull + (uintptr_t)i * 48, &size, &slot), -1);
    for (int i = 0; i < N; i++)
        assert_int_equal(mc_ptr_insert(0x610000000000ull + (uintptr_t)i * 48, (size_t)i + 1, 9), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(mc_ptr_remove(0x610000000000ull + (uintptr_t)i * 48, &size, &slot), 0);
        assert_true(size == (size_t)i + 1 && slot == 9);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ptr_table_memory_bound),
        cmocka_unit_test(ptr_table_matches_reference),
        cmocka_unit_test(ptr_table_sizes_and_tags),
        cmocka_unit_test(ptr_table_replaces_stale_entry),
        cmocka_unit_test(ptr_table_reset_forgets_all),
        cmocka_unit_test_setup_teardown(stacks_dedupe_and_count, setup_shm, teardown_shm),
        cmocka_unit_test_setup_teardown(stacks_overflow_when_full, setup_shm, teardown_shm),
        cmocka_unit_test_setup_teardown(stacks_concurrent_inserts, setup_shm, teardown_shm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
