/* memcreep.h - optional API for programs that run under memcreep.
 *
 * A program that does units of work memcreep does not drive itself (a worker
 * polling a queue, a batch loop) marks each finished unit, and memcreep then
 * states growth per unit as well as per minute:
 *
 *     #include <memcreep.h>
 *     ...
 *     handle(job);
 *     memcreep_work_done(1);
 *
 * Nothing needs linking: mc_work_done is a weak reference that the preloaded
 * libmemcreep.so satisfies. Without memcreep the call does nothing. */
#ifndef MEMCREEP_H
#define MEMCREEP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Adds units to the count of finished units of work of this process. */
void mc_work_done(uint64_t units) __attribute__((weak));

static inline void memcreep_work_done(uint64_t units)
{
    if (mc_work_done) mc_work_done(units);
}

#ifdef __cplusplus
}
#endif

#endif
