/* python_alloc.c - memcreep in front of CPython's mem and object allocator
 * domains, so that objects served by pymalloc (512 bytes or less: most of
 * a Python program's objects) are counted at the Python line that made
 * them, with pymalloc left on.
 *
 * Installed with PyMem_SetAllocator while the GIL is held (the domains are
 * only used under it), as tracemalloc does, wrapping the allocator each
 * domain had: a block made before is freed through the wrapper too and is
 * simply not found in the pointer table. The wrappers never call Python;
 * what they record, and how it is sampled, is in hooks.c (mc_obj_*). The
 * raw domain is malloc itself, which the library already hooks. A program
 * that later starts tracemalloc wraps these in turn, and puts them back
 * when it stops. */
#include <dlfcn.h>

#include "internal.h"
#include "python_api.h"

#define PYMEM_DOMAIN_MEM 1
#define PYMEM_DOMAIN_OBJ 2

/* What each domain had: the context the wrappers are given. */
static struct mc_allocator prev[2];
static int installed;

int mc_py_alloc_start(void)
{
    typedef void (*alloc_fn)(int, struct mc_allocator *);
    if (installed) return 1;
    if (mc_env_u64("MEMCREEP_PY_SAMPLE_BYTES", 8192) == 0) return 0;
    alloc_fn get = (alloc_fn)dlsym(RTLD_DEFAULT, "PyMem_GetAllocator");
    alloc_fn set = (alloc_fn)dlsym(RTLD_DEFAULT, "PyMem_SetAllocator");
    if (!get || !set) return -1;
    const int domains[2] = {PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ};
    for (int i = 0; i < 2; i++) {
        get(domains[i], &prev[i]);
        struct mc_allocator w = {&prev[i], mc_obj_malloc, mc_obj_calloc, mc_obj_realloc,
                                 mc_obj_free};
        set(domains[i], &w);
    }
    installed = 1;
    return 1;
}

void mc_py_alloc_stop(void)
{
    typedef void (*alloc_fn)(int, struct mc_allocator *);
    if (!installed) return;
    alloc_fn get = (alloc_fn)dlsym(RTLD_DEFAULT, "PyMem_GetAllocator");
    alloc_fn set = (alloc_fn)dlsym(RTLD_DEFAULT, "PyMem_SetAllocator");
    const int domains[2] = {PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ};
    for (int i = 0; i < 2 && get && set; i++) {
        struct mc_allocator cur;
        get(domains[i], &cur);
        /* Another wrapper put in front of ours since (tracemalloc) stays:
         * ours then passes everything through. */
        if (cur.malloc == mc_obj_malloc && cur.ctx == &prev[i]) set(domains[i], &prev[i]);
    }
    installed = 0;
}
