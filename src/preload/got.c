/* got.c - routing a running program's calls to the hooks, for memcreep
 * attach: the library was loaded with dlopen into a process that started
 * without it, so nothing binds to its malloc, open or pthread_create. Each
 * loaded module calls those through its global offset table (GOT): a
 * JUMP_SLOT entry per PLT call, a GLOB_DAT entry per call or address taken
 * without the PLT. Writing the hook's address into those entries routes
 * the module's calls to the hook from its next call on; writing back what
 * was there routes them back. This is how heaptrack attaches too.
 *
 * An entry is rewritten only when it holds the very function the hook
 * forwards to (dlsym(RTLD_NEXT) from here, the C library's), or, for a
 * JUMP_SLOT not bound yet (lazy binding), the module's own PLT stub: a
 * program or library that put its own function there keeps it. The hooks
 * are this library's own exported functions, found in its dynamic symbol
 * table, so the list of what can be routed is the list of what is
 * exported (exports.map) and cannot drift from it.
 *
 * Entries in the RELRO part (read-only once the loader relocated the
 * module) are written between two mprotect calls. An 8-byte aligned store
 * is atomic on x86-64: another thread calls either the old function or the
 * hook, never half of each. Everything runs inside dl_iterate_phdr's
 * callback, which holds the loader's lock, so a module cannot be unloaded
 * while its entries are written. */
#include <elf.h>
#include <link.h>
#include <dlfcn.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

/* A routable function: its name, the hook, and what the hook forwards to. */
struct hook {
    const char *name;
    uint32_t gnu_hash;
    uint64_t hook, next;
};

#define MAX_HOOKS 128
static struct hook hooks[MAX_HOOKS];
static int nhooks;

/* A rewritten entry: where, what was there, and the module it belongs to
 * (its load bias, to tell a module still loaded from one unloaded since). */
struct patch {
    uint64_t *slot;
    uint64_t orig, hook;
    uint64_t bias;
};

static struct patch *patches;
static size_t npatches, patch_cap;

/* Modules already looked at (their biases); cleared of unloaded ones. */
#define MAX_SEEN 4096
static uint64_t seen[MAX_SEEN];
static size_t nseen;
static unsigned long long last_adds, last_subs;
static uint64_t self_lo, self_hi;

/* The GNU hash of a symbol name (the ELF gABI's DT_GNU_HASH function). */
static uint32_t gnu_hash(const char *s)
{
    uint32_t h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

/* A dynamic-section address: glibc relocates them in place, the vDSO and
 * some loaders do not. */
static uint64_t dyn_ptr(const struct dl_phdr_info *info, uint64_t v)
{
    return v < info->dlpi_addr ? v + info->dlpi_addr : v;
}

/* What a module's dynamic section says about its symbols and relocations. */
struct dyn {
    const ElfW(Sym) * sym;
    const char *str;
    const ElfW(Rela) * rela, *jmprel;
    size_t relasz, jmprelsz;
    const uint32_t *gnu;
};

static int read_dynamic(const struct dl_phdr_info *info, struct dyn *d)
{
    memset(d, 0, sizeof(*d));
    const ElfW(Dyn) *dyn = NULL;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    if (!dyn) return -1;
    int pltrel_rela = 1;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        switch (dyn->d_tag) {
        case DT_SYMTAB:
            d->sym = (const ElfW(Sym) *)dyn_ptr(info, dyn->d_un.d_ptr);
            break;
        case DT_STRTAB:
            d->str = (const char *)dyn_ptr(info, dyn->d_un.d_ptr);
            break;
        case DT_RELA:
            d->rela = (const ElfW(Rela) *)dyn_ptr(info, dyn->d_un.d_ptr);
            break;
        case DT_RELASZ:
            d->relasz = dyn->d_un.d_val;
            break;
        case DT_JMPREL:
            d->jmprel = (const ElfW(Rela) *)dyn_ptr(info, dyn->d_un.d_ptr);
            break;
        case DT_PLTRELSZ:
            d->jmprelsz = dyn->d_un.d_val;
            break;
        case DT_PLTREL:
            pltrel_rela = dyn->d_un.d_val == DT_RELA;
            break;
        case DT_GNU_HASH:
            d->gnu = (const uint32_t *)dyn_ptr(info, dyn->d_un.d_ptr);
            break;
        }
    }
    if (!pltrel_rela) d->jmprel = NULL, d->jmprelsz = 0;
    return d->sym && d->str ? 0 : -1;
}

/* ---- the hooks: this library's exported functions ---- */

/* The number of symbols a DT_GNU_HASH table covers: past the highest
 * bucket's chain, whose last entry has its low bit set. */
static uint32_t gnu_symbol_count(const uint32_t *g)
{
    uint32_t nbuckets = g[0], symoffset = g[1], bloom = g[2];
    const uint32_t *buckets = g + 4 + bloom * (sizeof(ElfW(Addr)) / 4);
    const uint32_t *chain = buckets + nbuckets;
    uint32_t last = 0;
    for (uint32_t i = 0; i < nbuckets; i++)
        if (buckets[i] > last) last = buckets[i];
    if (last < symoffset) return symoffset;
    while (!(chain[last - symoffset] & 1))
        last++;
    return last + 1;
}

/* The main program, for canonical PLT entries: a non-PIE executable that
 * takes a function's address (python3.11 does, for malloc and free)
 * defines the symbol at its own PLT stub, an undefined symbol with a value,
 * and every module's reference binds to that stub, which jumps through the
 * executable's own GOT entry. Routing that one entry routes them all; the
 * other modules' entries, which hold the stub's address, are left as they
 * are (a function pointer compared with the program's &free stays equal). */
static struct dyn exe_dyn;
static uint64_t exe_bias, exe_lo, exe_hi;
static uint32_t exe_nsyms;

static int find_exe(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    /* The first object is the program itself. */
    mc_module_extent(info, &exe_lo, &exe_hi);
    exe_bias = info->dlpi_addr;
    if (read_dynamic(info, &exe_dyn) == 0 && exe_dyn.gnu) exe_nsyms = gnu_symbol_count(exe_dyn.gnu);
    return 1;
}

/* 1 when addr is the executable's canonical PLT entry for name. */
static int canonical_plt(const char *name, uint64_t addr)
{
    if (addr < exe_lo || addr >= exe_hi) return 0;
    for (uint32_t i = 1; i < exe_nsyms; i++) {
        const ElfW(Sym) *s = &exe_dyn.sym[i];
        if (s->st_shndx == SHN_UNDEF && s->st_value && exe_bias + s->st_value == addr &&
            !strcmp(exe_dyn.str + s->st_name, name))
            return 1;
    }
    return 0;
}

static int find_self(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uint64_t lo, hi, me = (uint64_t)(uintptr_t)data;
    mc_module_extent(info, &lo, &hi);
    if (me < lo || me >= hi) return 0;
    self_lo = lo;
    self_hi = hi;
    struct dyn d;
    if (read_dynamic(info, &d) != 0 || !d.gnu) return 1;
    uint32_t n = gnu_symbol_count(d.gnu);
    for (uint32_t i = 1; i < n && nhooks < MAX_HOOKS; i++) {
        const ElfW(Sym) *s = &d.sym[i];
        const char *name = d.str + s->st_name;
        /* The API (mc_work_done, the attach entry) is not a hook. */
        if (ELF64_ST_TYPE(s->st_info) != STT_FUNC || s->st_shndx == SHN_UNDEF ||
            !strncmp(name, "mc_", 3))
            continue;
        /* Only where the program-wide definition is the one the hook calls:
         * a program with its own malloc or open keeps it untouched. */
        void *next = dlsym(RTLD_NEXT, name), *def = dlsym(RTLD_DEFAULT, name);
        if (!next || (next != def && !canonical_plt(name, (uint64_t)(uintptr_t)def))) continue;
        hooks[nhooks++] = (struct hook){name, gnu_hash(name), info->dlpi_addr + s->st_value,
                                        (uint64_t)(uintptr_t)next};
    }
    return 1;
}

int mc_got_init(void)
{
    if (nhooks) return nhooks;
    dl_iterate_phdr(find_exe, NULL);
    dl_iterate_phdr(find_self, (void *)(uintptr_t)&mc_got_init);
    dlerror(); /* a failed lookup leaves nothing for the program's dlerror() */
    return nhooks;
}

static const struct hook *hook_named(const char *name)
{
    uint32_t h = gnu_hash(name);
    for (int i = 0; i < nhooks; i++)
        if (hooks[i].gnu_hash == h && !strcmp(hooks[i].name, name)) return &hooks[i];
    return NULL;
}

/* ---- writing entries ---- */

/* Writes v into *slot, making its page writable for the time of the write
 * when it lies in [ro_lo, ro_hi) (the module's RELRO pages). */
static void put(uint64_t *slot, uint64_t v, uint64_t ro_lo, uint64_t ro_hi)
{
    uint64_t a = (uint64_t)(uintptr_t)slot;
    if (a >= ro_lo && a < ro_hi) {
        long pg = sysconf(_SC_PAGESIZE);
        void *page = (void *)(uintptr_t)(a & ~(uint64_t)(pg - 1));
        if (mprotect(page, (size_t)pg, PROT_READ | PROT_WRITE) != 0) return;
        __atomic_store_n(slot, v, __ATOMIC_RELEASE);
        mprotect(page, (size_t)pg, PROT_READ);
        return;
    }
    __atomic_store_n(slot, v, __ATOMIC_RELEASE);
}

/* The module's pages the loader made read-only after relocating it. */
static void relro(const struct dl_phdr_info *info, uint64_t *lo, uint64_t *hi)
{
    long pg = sysconf(_SC_PAGESIZE);
    *lo = *hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_GNU_RELRO) continue;
        uint64_t s = info->dlpi_addr + ph->p_vaddr;
        *lo = s & ~(uint64_t)(pg - 1);
        *hi = (s + ph->p_memsz) & ~(uint64_t)(pg - 1);
    }
}

static int add_patch(uint64_t *slot, uint64_t orig, uint64_t hook, uint64_t bias)
{
    if (npatches == patch_cap) {
        size_t cap = patch_cap ? patch_cap * 2 : 512;
        struct patch *np = mc_sys_alloc(cap * sizeof(*np));
        if (!np) return -1;
        if (patches) memcpy(np, patches, npatches * sizeof(*np));
        mc_sys_free(patches, patch_cap * sizeof(*np));
        patches = np;
        patch_cap = cap;
    }
    patches[npatches++] = (struct patch){slot, orig, hook, bias};
    return 0;
}

static void patch_relocs(const struct dl_phdr_info *info, const struct dyn *d, const ElfW(Rela) * r,
                         size_t size, uint64_t ro_lo, uint64_t ro_hi, uint64_t lo, uint64_t hi)
{
    for (size_t i = 0; r && i < size / sizeof(*r); i++) {
        uint32_t type = ELF64_R_TYPE(r[i].r_info), sym = ELF64_R_SYM(r[i].r_info);
        if ((type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT) || !sym) continue;
        const struct hook *h = hook_named(d->str + d->sym[sym].st_name);
        if (!h) continue;
        uint64_t *slot = (uint64_t *)(info->dlpi_addr + r[i].r_offset);
        uint64_t cur = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
        /* The C library's function, or this module's PLT stub (not bound
         * yet); anything else was put there by someone else. */
        int lazy = type == R_X86_64_JUMP_SLOT && cur >= lo && cur < hi;
        if (cur != h->next && !lazy) continue;
        if (add_patch(slot, cur, h->hook, info->dlpi_addr) != 0) return;
        put(slot, h->hook, ro_lo, ro_hi);
    }
}

static int seen_module(uint64_t bias)
{
    for (size_t i = 0; i < nseen; i++)
        if (seen[i] == bias) return 1;
    return 0;
}

/* Modules that must not be routed: this library (its own calls go to the
 * C library directly), the dynamic loader and the vDSO. */
static int skip_module(const struct dl_phdr_info *info, uint64_t lo)
{
    const char *n = info->dlpi_name ? info->dlpi_name : "";
    return lo == self_lo || strstr(n, "/ld-linux") || strstr(n, "linux-vdso") ||
           (*n && !strchr(n, '/') && info->dlpi_addr != 0 && strstr(n, "vdso"));
}

static int patch_module(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    uint64_t lo, hi, ro_lo, ro_hi;
    mc_module_extent(info, &lo, &hi);
    if (hi == 0 || skip_module(info, lo) || seen_module(info->dlpi_addr)) return 0;
    if (nseen < MAX_SEEN) seen[nseen++] = info->dlpi_addr;
    struct dyn d;
    if (read_dynamic(info, &d) != 0) return 0;
    relro(info, &ro_lo, &ro_hi);
    patch_relocs(info, &d, d.jmprel, d.jmprelsz, ro_lo, ro_hi, lo, hi);
    patch_relocs(info, &d, d.rela, d.relasz, ro_lo, ro_hi, lo, hi);
    return 0;
}

/* Forgets the modules unloaded since the last pass: their entries are
 * gone with them and must never be written. */
static int mark_loaded(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uint8_t *live = data;
    for (size_t i = 0; i < nseen; i++)
        if (seen[i] == info->dlpi_addr) live[i] = 1;
    return 0;
}

static int read_counts(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)data;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs)) {
        last_adds = info->dlpi_adds;
        last_subs = info->dlpi_subs;
    }
    return 1;
}

static void drop_unloaded(void)
{
    static uint8_t live[MAX_SEEN];
    memset(live, 0, sizeof(live));
    dl_iterate_phdr(mark_loaded, live);
    size_t k = 0, kp = 0;
    for (size_t i = 0; i < nseen; i++) {
        if (!live[i]) {
            for (size_t j = 0; j < npatches; j++)
                if (patches[j].bias == seen[i]) patches[j].slot = NULL;
            continue;
        }
        seen[k++] = seen[i];
    }
    nseen = k;
    for (size_t j = 0; j < npatches; j++)
        if (patches[j].slot) patches[kp++] = patches[j];
    npatches = kp;
}

int mc_got_patch(void)
{
    unsigned long long adds = last_adds, subs = last_subs;
    dl_iterate_phdr(read_counts, NULL);
    if (nseen && adds == last_adds && subs == last_subs) return 0; /* nothing new */
    if (subs != last_subs) drop_unloaded();
    size_t before = npatches;
    dl_iterate_phdr(patch_module, NULL);
    if (mc_shm) __atomic_store_n(&mc_shm->attach_patched, (uint32_t)npatches, __ATOMIC_RELAXED);
    return (int)(npatches - before);
}

size_t mc_got_patched(void)
{
    return npatches;
}

static int unpatch_module(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    uint64_t ro_lo, ro_hi;
    relro(info, &ro_lo, &ro_hi);
    for (size_t j = 0; j < npatches; j++) {
        struct patch *p = &patches[j];
        if (!p->slot || p->bias != info->dlpi_addr) continue;
        /* Only what still holds the hook: a module may have been rebound
         * since (a lazy slot of a module loaded again at the same place). */
        if (__atomic_load_n(p->slot, __ATOMIC_ACQUIRE) == p->hook)
            put(p->slot, p->orig, ro_lo, ro_hi);
        p->slot = NULL;
    }
    return 0;
}

void mc_got_unpatch(void)
{
    dl_iterate_phdr(unpatch_module, NULL);
    npatches = 0;
    nseen = 0;
    if (mc_shm) __atomic_store_n(&mc_shm->attach_patched, 0, __ATOMIC_RELAXED);
}
