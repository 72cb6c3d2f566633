/* api.c - the small public API of memcreep.h, as seen from inside the
 * target: a program marks its units of work so growth can be stated per
 * unit when memcreep is not the one driving the load. */
#include "../../include/memcreep.h"
#include "internal.h"

__attribute__((visibility("default"))) void mc_work_done(uint64_t units)
{
    if (!mc_active || mc_publish_own() != 0) return;
    __atomic_fetch_add(&mc_shm->work_units, units, __ATOMIC_RELAXED);
}
