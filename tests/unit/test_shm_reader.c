/* test_shm_reader.c - the reader accepts a well-formed mapping and refuses
 * truncated or corrupt ones without reading out of bounds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/shm_reader.h"
#include "shm_fixture.h"

static char path[] = "/tmp/mc-test-shm-XXXXXX";

static void write_file(const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_true(fwrite(buf, 1, len, f) == len);
    fclose(f);
}

static void reads_valid_mapping(void **state)
{
    (void)state;
    size_t size;
    struct mc_shm_header *h = shm_fixture(1024, 4096, &size);
    struct mc_shm_stack *st = (struct mc_shm_stack *)((char *)h + h->off_stacks);
    uint64_t *frames = (uint64_t *)((char *)h + h->off_frames);
    uint32_t *list = (uint32_t *)((char *)h + h->off_stack_list);
    frames[0] = 0x1234;
    frames[1] = 0x5678;
    st[7].hash = 99;
    st[7].frames = (0ull << 16) | 2;
    st[7].ready = 1;
    st[7].live_bytes = 640;
    list[0] = 8;
    h->stack_count = 1;
    write_file(h, size);
    struct mc_map m;
    assert_int_equal(mc_map_open(path, &m), 0);
    assert_int_equal(mc_map_stack_count(&m), 1);
    assert_int_equal(mc_map_stack_slot(&m, 0), 7);
    assert_int_equal(mc_map_stack_slot(&m, 1), -1);
    const uint64_t *f;
    assert_int_equal(mc_map_frames(&m, mc_map_stack(&m, 7), &f), 2);
    assert_true(f[0] == 0x1234 && f[1] == 0x5678);
    assert_null(mc_map_stack(&m, 1024));
    mc_map_close(&m);

    /* A frame offset past the pool yields no frames. */
    st[7].frames = (4095ull << 16) | 2;
    write_file(h, size);
    assert_int_equal(mc_map_open(path, &m), 0);
    assert_int_equal(mc_map_frames(&m, mc_map_stack(&m, 7), &f), 0);
    mc_map_close(&m);
    free(h);
}

static void refuses_corrupt_mappings(void **state)
{
    (void)state;
    size_t size;
    struct mc_map m;
    struct mc_shm_header *h = shm_fixture(1024, 4096, &size);
    write_file(h, 100); /* truncated header */
    assert_int_equal(mc_map_open(path, &m), -EPROTO);
    write_file(h, size - 64); /* size does not match */
    assert_int_equal(mc_map_open(path, &m), -EPROTO);
    h->magic = 0; /* not published yet: read, never mapped */
    write_file(h, size);
    assert_int_equal(mc_map_open(path, &m), -EAGAIN);
    h->magic = MC_SHM_MAGIC ^ 1;
    write_file(h, size);
    assert_int_equal(mc_map_open(path, &m), -EPROTO);
    h->magic = MC_SHM_MAGIC;
    h->version = MC_SHM_VERSION + 1;
    write_file(h, size);
    assert_int_equal(mc_map_open(path, &m), -EPROTO);
    h->version = MC_SHM_VERSION;
    h->off_stack_ext = size - 64; /* descriptor records past the end */
    write_file(h, size);
    assert_int_equal(mc_map_open(path, &m), -EPROTO);
    h->off_stack_ext = A64(h->off_threads + 8 * sizeof(struct mc_shm_thread));
    h->off_frames = size - 8; /* frame pool past the end */
    write_file(h, size);
    assert_int_equal(mc_map_open(path, &m), -EPROTO);
    h->off_frames = A64(h->off_stack_list + 1024 * 4);
    h->stack_cap = 1000; /* not a power of two */
    write_file(h, size);
    assert_int_equal(mc_map_open(path, &m), -EPROTO);
    assert_int_equal(mc_map_open("/nonexistent/map", &m), -ENOENT);
    free(h);
}

int main(void)
{
    int fd = mkstemp(path);
    close(fd);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_valid_mapping),
        cmocka_unit_test(refuses_corrupt_mappings),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(path);
    return rc;
}
