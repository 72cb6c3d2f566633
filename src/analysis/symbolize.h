/* symbolize.h - return addresses to function, file:line and module, with
 * elfutils (libdw). Works after the target exited: it needs only the module
 * list the target published and the files on disk. */
#ifndef MC_SYMBOLIZE_H
#define MC_SYMBOLIZE_H

#include <stdint.h>

#include "common/shm_format.h"

struct mc_frame {
    uint64_t addr;
    uint64_t offset;    /* addr relative to the module's load bias */
    int inlined;        /* 1: a function inlined at this address */
    char function[256]; /* demangled; "??" when unknown */
    char file[256];     /* source file, "" when no line information */
    int line;
    char module[128]; /* file name of the module, without directory */
};

struct mc_symbolizer;

/* Returns a new symbolizer, NULL on allocation failure. Free with
 * mc_symbolizer_free. */
struct mc_symbolizer *mc_symbolizer_new(void);
void mc_symbolizer_free(struct mc_symbolizer *s);
/* Describes the return address addr of a process whose modules are mods.
 * Functions inlined at that address come first, innermost first, each
 * with the line where it stands, then the real function: up to max
 * frames in out. Returns how many were written (at least 1, with "??"
 * where nothing is known). */
int mc_symbolize(struct mc_symbolizer *s, const struct mc_shm_module *mods, uint64_t nmods,
                 uint64_t addr, struct mc_frame *out, int max);

#endif
