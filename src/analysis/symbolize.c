/* symbolize.c - symbolization with libdwfl.
 *
 * One Dwfl session per (file, load bias), cached for the whole run: forked
 * children share their parent's modules, so each file is opened and its
 * DWARF indexed once. Addresses are return addresses, so the line looked up
 * is that of addr - 1, the call instruction itself. C++ names are demangled
 * with the C++ runtime's __cxa_demangle. */
#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "symbolize.h"

/* From the C++ runtime (libstdc++), declared here to keep this file C. */
extern char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

struct dwfl_entry {
    char path[MC_PATH_MAX];
    uint64_t bias;
    Dwfl *dwfl; /* NULL when the file could not be read */
};

struct mc_symbolizer {
    struct dwfl_entry *e;
    size_t n, cap;
};

static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
};

struct mc_symbolizer *mc_symbolizer_new(void)
{
    return calloc(1, sizeof(struct mc_symbolizer));
}

void mc_symbolizer_free(struct mc_symbolizer *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++)
        if (s->e[i].dwfl) dwfl_end(s->e[i].dwfl);
    free(s->e);
    free(s);
}

static Dwfl *session_for(struct mc_symbolizer *s, const struct mc_shm_module *m)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->e[i].bias == m->bias && !strcmp(s->e[i].path, m->path)) return s->e[i].dwfl;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct dwfl_entry *e = realloc(s->e, cap * sizeof(*e));
        if (!e) return NULL;
        s->e = e;
        s->cap = cap;
    }
    struct dwfl_entry *en = &s->e[s->n++];
    memset(en, 0, sizeof(*en));
    snprintf(en->path, sizeof(en->path), "%s", m->path);
    en->bias = m->bias;
    if (m->path[0] != '/') return NULL; /* the vdso, or no file */
    Dwfl *d = dwfl_begin(&callbacks);
    if (!d) return NULL;
    dwfl_report_begin(d);
    Dwfl_Module *mod = dwfl_report_elf(d, m->path, m->path, -1, m->bias, false);
    dwfl_report_end(d, NULL, NULL);
    if (!mod) {
        dwfl_end(d);
        return NULL;
    }
    en->dwfl = d;
    return d;
}

static void set_function(struct mc_frame *out, const char *name)
{
    int status = -1;
    char *dm = NULL;
    if (name && name[0] == '_' && name[1] == 'Z') dm = __cxa_demangle(name, NULL, NULL, &status);
    snprintf(out->function, sizeof(out->function), "%s",
             status == 0 && dm ? dm : (name ? name : "??"));
    free(dm);
}

void mc_symbolize(struct mc_symbolizer *s, const struct mc_shm_module *mods, uint64_t nmods,
                  uint64_t addr, struct mc_frame *out)
{
    memset(out, 0, sizeof(*out));
    out->addr = addr;
    strcpy(out->function, "??");
    const struct mc_shm_module *m = NULL;
    /* The last match wins: a module loaded later at a reused address. */
    for (uint64_t i = 0; i < nmods; i++)
        if (addr >= mods[i].lo && addr < mods[i].hi) m = &mods[i];
    if (!m) return;
    const char *base = strrchr(m->path, '/');
    snprintf(out->module, sizeof(out->module), "%s", base ? base + 1 : m->path);
    Dwfl *d = s ? session_for(s, m) : NULL;
    if (!d) return;
    uint64_t pc = addr - 1;
    Dwfl_Module *mod = dwfl_addrmodule(d, pc);
    if (!mod) return;
    GElf_Off off;
    GElf_Sym sym;
    const char *name = dwfl_module_addrinfo(mod, pc, &off, &sym, NULL, NULL, NULL);
    if (name) set_function(out, name);
    Dwfl_Line *line = dwfl_module_getsrc(mod, pc);
    if (line) {
        int lineno = 0;
        const char *src = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
        if (src) {
            snprintf(out->file, sizeof(out->file), "%s", src);
            out->line = lineno;
        }
    }
}
