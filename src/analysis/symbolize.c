/* symbolize.c - symbolization with libdwfl.
 *
 * One Dwfl session per (file, load bias), cached for the whole run: forked
 * children share their parent's modules, so each file is opened and its
 * DWARF indexed once. Addresses are return addresses, so the line looked up
 * is that of addr - 1, the call instruction itself. Functions inlined at
 * the address are expanded from the DWARF scopes (as addr2line -i does):
 * an allocation in a small helper the compiler inlined is still named by
 * the helper. C++ names are demangled with the C++ runtime's
 * __cxa_demangle.
 *
 * The C library's own frames are named from its symbol table alone: with
 * its debug file installed (libc6-dbg, which valgrind pulls in), reading
 * its compressed DWARF for lines costs 0.1 s of every run, and a line in
 * glibc's sources (../csu/libc-start.c:360) tells the program's author
 * nothing the function name does not. */
#include <dwarf.h>
#include <elfutils/libdw.h>
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

/* What one return address of one module came to: stacks share most of
 * their frames (every stack of a process ends in main and _start), and
 * libdwfl looks a symbol up by scanning the whole symbol table. */
struct memo {
    uint64_t addr;
    uint32_t entry; /* index in e, plus one: 0 is a free slot */
    int n;
    struct mc_frame *fr;
};

struct mc_symbolizer {
    struct dwfl_entry *e;
    size_t n, cap;
    struct memo *memo; /* open addressing, linear probing, power-of-two size */
    size_t nmemo, memo_cap;
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
    for (size_t i = 0; i < s->memo_cap; i++)
        free(s->memo[i].fr);
    free(s->memo);
    free(s->e);
    free(s);
}

/* The slot of (entry, addr) in the memo: its own, or the free one where
 * it goes. The memo is never full (it grows at half). */
static struct memo *memo_slot(struct memo *t, size_t cap, uint32_t entry, uint64_t addr)
{
    size_t i =
        (size_t)(((addr ^ ((uint64_t)entry << 48)) * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
    while (t[i].entry && (t[i].entry != entry || t[i].addr != addr))
        i = (i + 1) & (cap - 1);
    return &t[i];
}

/* Remembers n frames for (entry, addr); nothing when out of memory (the
 * next lookup of the address then symbolizes it again). */
static void memo_put(struct mc_symbolizer *s, uint32_t entry, uint64_t addr,
                     const struct mc_frame *fr, int n)
{
    if (2 * (s->nmemo + 1) > s->memo_cap) {
        size_t cap = s->memo_cap ? 2 * s->memo_cap : 1024;
        struct memo *t = calloc(cap, sizeof(*t));
        if (!t) return;
        for (size_t i = 0; i < s->memo_cap; i++)
            if (s->memo[i].entry)
                *memo_slot(t, cap, s->memo[i].entry, s->memo[i].addr) = s->memo[i];
        free(s->memo);
        s->memo = t;
        s->memo_cap = cap;
    }
    struct mc_frame *copy = malloc((size_t)n * sizeof(*copy));
    if (!copy) return;
    memcpy(copy, fr, (size_t)n * sizeof(*copy));
    struct memo *m = memo_slot(s->memo, s->memo_cap, entry, addr);
    if (m->entry)
        free(m->fr); /* looked up again with more room */
    else
        s->nmemo++;
    *m = (struct memo){addr, entry, n, copy};
}

/* The Dwfl session of module m (NULL when its file cannot be read), and
 * in *entry its index in s->e plus one (0 when out of memory). */
static Dwfl *session_for(struct mc_symbolizer *s, const struct mc_shm_module *m, uint32_t *entry)
{
    *entry = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->e[i].bias == m->bias && !strcmp(s->e[i].path, m->path)) {
            *entry = (uint32_t)i + 1;
            return s->e[i].dwfl;
        }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct dwfl_entry *e = realloc(s->e, cap * sizeof(*e));
        if (!e) return NULL;
        s->e = e;
        s->cap = cap;
    }
    struct dwfl_entry *en = &s->e[s->n++];
    *entry = (uint32_t)s->n;
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

/* glibc's modules, by the start of their file names. */
static const char *const libc_modules[] = {"libc.so.",       "ld-linux",  "libm.so.",
                                           "libpthread.so.", "libdl.so.", "librt.so.",
                                           "libresolv.so."};

/* Is this module (a base name) part of the C library? */
static int is_libc(const char *base)
{
    for (size_t i = 0; i < sizeof(libc_modules) / sizeof(libc_modules[0]); i++)
        if (!strncmp(base, libc_modules[i], strlen(libc_modules[i]))) return 1;
    return 0;
}

static void set_function(struct mc_frame *out, const char *name)
{
    int status = -1;
    /* glibc's internal aliases (__GI___strdup) name the public function. */
    if (name && !strncmp(name, "__GI_", 5) && name[5]) name += 5;
    char *dm = NULL;
    if (name && name[0] == '_' && name[1] == 'Z') dm = __cxa_demangle(name, NULL, NULL, &status);
    snprintf(out->function, sizeof(out->function), "%s",
             status == 0 && dm ? dm : (name ? name : "??"));
    free(dm);
}

/* Name of a subprogram or inlined-subroutine DIE, following
 * DW_AT_abstract_origin / DW_AT_specification; the linkage name first so
 * that C++ names demangle with their signature. */
static const char *die_name(Dwarf_Die *die)
{
    Dwarf_Attribute attr;
    const char *n = NULL;
    if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr)) n = dwarf_formstring(&attr);
    if (!n && dwarf_attr_integrate(die, DW_AT_name, &attr)) n = dwarf_formstring(&attr);
    return n;
}

/* File and line where an inlined subroutine was called from. */
static void call_site(Dwarf_Die *cu, Dwarf_Die *inl, struct mc_frame *f)
{
    Dwarf_Attribute attr;
    Dwarf_Word file = 0, line = 0;
    Dwarf_Files *files;
    size_t nfiles;
    int has_file = dwarf_attr(inl, DW_AT_call_file, &attr) && dwarf_formudata(&attr, &file) == 0;
    if (dwarf_attr(inl, DW_AT_call_line, &attr)) dwarf_formudata(&attr, &line);
    f->line = (int)line;
    f->file[0] = 0;
    /* DWARF 5 numbers files from 0, DWARF 4 from 1: take the index as is. */
    if (has_file && dwarf_getsrcfiles(cu, &files, &nfiles) == 0 && file < nfiles) {
        const char *src = dwarf_filesrc(files, file, NULL, NULL);
        if (src) snprintf(f->file, sizeof(f->file), "%s", src);
    }
}

/* Expands the inline chain at pc into out[0..]. out[0] holds the line of
 * pc and the module already; each outer function's line is the call site
 * of the inlined function just inside it. Returns the frames written. */
static int expand_inlines(Dwfl_Module *mod, uint64_t pc, struct mc_frame *out, int max)
{
    Dwarf_Addr bias;
    Dwarf_Die *cu = dwfl_module_addrdie(mod, pc, &bias);
    Dwarf_Die *scopes = NULL, inner;
    if (!cu) return 1;
    /* dwarf_getscopes follows an inlined function to its abstract
     * definition; the physical nesting (what was inlined into what) comes
     * from dwarf_getscopes_die on the innermost scope. */
    int n = dwarf_getscopes(cu, pc - bias, &scopes);
    if (n <= 0) {
        free(scopes);
        return 1;
    }
    inner = scopes[0];
    free(scopes);
    scopes = NULL;
    n = dwarf_getscopes_die(&inner, &scopes);
    int k = 0, prev = -1;
    for (int i = 0; i < n && k < max; i++) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram) continue;
        if (k > 0) {
            out[k] = out[0];
            call_site(cu, &scopes[prev], &out[k]);
        }
        const char *name = die_name(&scopes[i]);
        if (name) set_function(&out[k], name);
        out[k].inlined = tag == DW_TAG_inlined_subroutine;
        prev = i;
        k++;
        if (tag == DW_TAG_subprogram) break;
    }
    free(scopes);
    return k ? k : 1;
}

/* GCC sometimes describes a call as made from an inlined copy of a
 * function inside that same function (the copy's call site being the
 * function's own first line): two frames of one function where the source
 * has one. The copy is folded into the frame around it, with the line of
 * the call, so that a call prints the same whichever copy the compiler
 * emitted it in. Returns the frames left. */
static int fold_self_inlines(struct mc_frame *out, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (k > 0 && out[k - 1].inlined && !strcmp(out[k - 1].function, out[i].function) &&
            strcmp(out[i].function, "??")) {
            out[k - 1].inlined = out[i].inlined;
            continue;
        }
        if (k != i) out[k] = out[i];
        k++;
    }
    return k;
}

/* Names addr (out[0] has its module and offset already) with libdwfl:
 * the symbol, then the line and inlined functions from DWARF. Returns the
 * frames written, at least 1. */
static int lookup(Dwfl *d, uint64_t addr, struct mc_frame *out, int max)
{
    uint64_t pc = addr - 1;
    Dwfl_Module *mod = dwfl_addrmodule(d, pc);
    if (!mod) return 1;
    GElf_Off off;
    GElf_Sym sym;
    const char *name = dwfl_module_addrinfo(mod, pc, &off, &sym, NULL, NULL, NULL);
    if (name) set_function(out, name);
    if (is_libc(out->module)) return 1;
    Dwfl_Line *line = dwfl_module_getsrc(mod, pc);
    if (!line) return 1;
    int lineno = 0;
    const char *src = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
    if (src) {
        snprintf(out->file, sizeof(out->file), "%s", src);
        out->line = lineno;
    }
    /* The symbol table's name is kept for the outermost frame when DWARF
     * has none (it carries versions such as @@GLIBC_2.34 too). */
    char symname[sizeof(out->function)];
    memcpy(symname, out->function, sizeof(symname));
    int n = expand_inlines(mod, pc, out, max);
    if (!strcmp(out[n - 1].function, "??")) memcpy(out[n - 1].function, symname, sizeof(symname));
    return fold_self_inlines(out, n);
}

int mc_symbolize(struct mc_symbolizer *s, const struct mc_shm_module *mods, uint64_t nmods,
                 uint64_t addr, struct mc_frame *out, int max)
{
    memset(out, 0, sizeof(*out));
    out->addr = addr;
    strcpy(out->function, "??");
    const struct mc_shm_module *m = NULL;
    /* The last match wins: a module loaded later at a reused address. */
    for (uint64_t i = 0; i < nmods; i++)
        if (addr >= mods[i].lo && addr < mods[i].hi) m = &mods[i];
    if (!m) return 1;
    out->offset = addr - m->bias;
    const char *base = strrchr(m->path, '/');
    snprintf(out->module, sizeof(out->module), "%s", base ? base + 1 : m->path);
    uint32_t entry = 0;
    Dwfl *d = s ? session_for(s, m, &entry) : NULL;
    if (!d) return 1;
    if (entry && s->memo_cap) {
        const struct memo *hit = memo_slot(s->memo, s->memo_cap, entry, addr);
        if (hit->entry && hit->n <= max) {
            memcpy(out, hit->fr, (size_t)hit->n * sizeof(*out));
            return hit->n;
        }
    }
    int n = lookup(d, addr, out, max);
    if (entry) memo_put(s, entry, addr, out, n);
    return n;
}
