/* cfi.c - the unwind rule of one code address, read from the call-frame
 * information the module carries for C++ exceptions (.eh_frame, found
 * through .eh_frame_hdr's sorted table; the format is DWARF 4 section 6.4
 * with the changes of the Linux Standard Base, "Exception Frames").
 *
 * A rule says, for one instruction address on x86_64, how to get from that
 * frame to its caller's:
 *     CFA        = (rsp or rbp of this frame) + offset
 *     caller rip = *(CFA - 8)
 *     caller rsp = CFA
 *     caller rbp = *(CFA + rbp_off) when this frame saved it, else rbp
 * Only rules of that shape are returned. Anything else (a CFA given by an
 * expression or another register, as in a signal trampoline or a stack
 * realigned by main, a return address not at CFA - 8, an address no
 * module covers) is MC_RULE_OTHER: the capture then asks libunwind, which
 * knows every case. These are the rules compilers emit for ordinary code,
 * with or without frame pointers.
 *
 * Runs only on a rule cache miss (unwind.c), once per return address. */
#include <link.h>
#include <string.h>

#include "internal.h"

#define REG_RBP 6
#define REG_RSP 7
#define REG_RA  16

/* The rule registers take while the CFA program runs. */
enum reg_how { REG_SAME, REG_AT, REG_UNDEF, REG_COMPLEX };

struct regs {
    int cfa_reg;
    int64_t cfa_off;
    int cfa_complex;
    enum reg_how rbp_how, ra_how;
    int64_t rbp_off, ra_off;
};

struct cie {
    const uint8_t *insn, *end;
    uint64_t code_align;
    int64_t data_align;
    uint8_t fde_enc;
    int signal, has_z;
};

static uint64_t uleb(const uint8_t **p, const uint8_t *end)
{
    uint64_t v = 0;
    int shift = 0;
    while (*p < end) {
        uint8_t b = *(*p)++;
        if (shift < 64) v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) break;
    }
    return v;
}

static int64_t sleb(const uint8_t **p, const uint8_t *end)
{
    uint64_t v = 0;
    int shift = 0;
    uint8_t b = 0;
    while (*p < end) {
        b = *(*p)++;
        if (shift < 64) v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) break;
    }
    if (shift < 64 && (b & 0x40)) v |= ~0ull << shift;
    return (int64_t)v;
}

/* Reads a pointer in DWARF EH encoding enc (DW_EH_PE_*: the low nibble the
 * format, 0x10 pc-relative, 0x30 relative to data_base). Returns 0 and
 * sets *out, or -1 for an encoding this reader does not take. */
static int read_enc(const uint8_t **p, const uint8_t *end, uint8_t enc, uint64_t data_base,
                    uint64_t *out)
{
    const uint8_t *at = *p;
    uint64_t v;
    if (enc == 0xff) return -1; /* omitted */
    switch (enc & 0x0f) {
    case 0x00: /* absptr */
    case 0x04: /* udata8 */
    case 0x0c: /* sdata8 */
        if (end - at < 8) return -1;
        memcpy(&v, at, 8);
        *p = at + 8;
        break;
    case 0x01:
        v = uleb(p, end);
        break;
    case 0x09:
        v = (uint64_t)sleb(p, end);
        break;
    case 0x02: {
        uint16_t x;
        if (end - at < 2) return -1;
        memcpy(&x, at, 2);
        v = x;
        *p = at + 2;
        break;
    }
    case 0x0a: {
        int16_t x;
        if (end - at < 2) return -1;
        memcpy(&x, at, 2);
        v = (uint64_t)(int64_t)x;
        *p = at + 2;
        break;
    }
    case 0x03: {
        uint32_t x;
        if (end - at < 4) return -1;
        memcpy(&x, at, 4);
        v = x;
        *p = at + 4;
        break;
    }
    case 0x0b: {
        int32_t x;
        if (end - at < 4) return -1;
        memcpy(&x, at, 4);
        v = (uint64_t)(int64_t)x;
        *p = at + 4;
        break;
    }
    default:
        return -1;
    }
    switch (enc & 0x70) {
    case 0x00:
        break;
    case 0x10:
        v += (uint64_t)(uintptr_t)at;
        break;
    case 0x30:
        v += data_base;
        break;
    default:
        return -1;
    }
    if (enc & 0x80) return -1; /* indirect: never used for code ranges */
    *out = v;
    return 0;
}

/* Parses the CIE at c. Returns 0, or -1 when it is not one this reader
 * takes (64-bit DWARF, unknown augmentation, return address column not
 * rip). */
static int parse_cie(const uint8_t *c, struct cie *out)
{
    uint32_t len;
    memcpy(&len, c, 4);
    if (len == 0 || len == 0xffffffffu) return -1;
    const uint8_t *end = c + 4 + len, *p = c + 8;
    uint8_t version = *p++;
    const char *aug = (const char *)p;
    size_t auglen = strnlen(aug, (size_t)(end - p));
    p += auglen + 1;
    if (p > end) return -1;
    memset(out, 0, sizeof(*out));
    out->fde_enc = 0; /* absptr unless 'R' says otherwise */
    if (aug[0] == 'e' && aug[1] == 'h') p += 8;
    out->code_align = uleb(&p, end);
    out->data_align = sleb(&p, end);
    uint64_t ra = version == 1 ? *p++ : uleb(&p, end);
    if (ra != REG_RA) return -1;
    const uint8_t *aug_end = NULL;
    for (size_t i = 0; i < auglen; i++) {
        switch (aug[i]) {
        case 'z': {
            uint64_t n = uleb(&p, end);
            aug_end = p + n;
            out->has_z = 1;
            break;
        }
        case 'L':
            p++;
            break;
        case 'P': {
            uint8_t enc = *p++;
            uint64_t dummy;
            if (read_enc(&p, end, (uint8_t)(enc & 0x7f), 0, &dummy) != 0) return -1;
            break;
        }
        case 'R':
            out->fde_enc = *p++;
            break;
        case 'S':
            out->signal = 1;
            break;
        case 'e':
        case 'h':
            break;
        default:
            /* An augmentation this reader does not know: with 'z' its
             * data can be skipped; without, the CIE cannot be read. */
            if (!aug_end) return -1;
            p = aug_end;
            i = auglen;
            break;
        }
    }
    if (aug_end) p = aug_end;
    if (p > end) return -1;
    out->insn = p;
    out->end = end;
    return 0;
}

struct state_stack {
    struct regs s[8];
    int n;
};

/* Runs CFA instructions [p, end) from location loc, stopping before the
 * first row that starts beyond target. init holds the CIE's rules (for
 * DW_CFA_restore). Returns 0, or -1 on an instruction this reader cannot
 * follow. */
static int run(const uint8_t *p, const uint8_t *end, const struct cie *cie, uint64_t loc,
               uint64_t target, struct regs *r, const struct regs *init)
{
    struct state_stack st = {.n = 0};
    while (p < end) {
        uint8_t op = *p++;
        uint8_t hi = op & 0xc0, lo = op & 0x3f;
        uint64_t reg, adv = 0;
        int64_t off;
        if (hi == 0x40) { /* advance_loc */
            adv = lo * cie->code_align;
            goto advance;
        }
        if (hi == 0x80) { /* offset */
            reg = lo;
            off = (int64_t)uleb(&p, end) * cie->data_align;
            goto set_at;
        }
        if (hi == 0xc0) { /* restore */
            reg = lo;
            goto restore;
        }
        switch (op) {
        case 0x00: /* nop */
            continue;
        case 0x01: { /* set_loc */
            uint64_t a;
            if (read_enc(&p, end, cie->fde_enc, 0, &a) != 0) return -1;
            if (a > target) return 0;
            loc = a;
            continue;
        }
        case 0x02:
            adv = *p++ * cie->code_align;
            goto advance;
        case 0x03: {
            uint16_t x;
            memcpy(&x, p, 2);
            p += 2;
            adv = x * cie->code_align;
            goto advance;
        }
        case 0x04: {
            uint32_t x;
            memcpy(&x, p, 4);
            p += 4;
            adv = x * cie->code_align;
            goto advance;
        }
        case 0x05: /* offset_extended */
            reg = uleb(&p, end);
            off = (int64_t)uleb(&p, end) * cie->data_align;
            goto set_at;
        case 0x11: /* offset_extended_sf */
            reg = uleb(&p, end);
            off = sleb(&p, end) * cie->data_align;
            goto set_at;
        case 0x06: /* restore_extended */
            reg = uleb(&p, end);
            goto restore;
        case 0x07: /* undefined */
            reg = uleb(&p, end);
            if (reg == REG_RBP) r->rbp_how = REG_UNDEF;
            if (reg == REG_RA) r->ra_how = REG_UNDEF;
            continue;
        case 0x08: /* same_value */
            reg = uleb(&p, end);
            if (reg == REG_RBP) r->rbp_how = REG_SAME;
            if (reg == REG_RA) r->ra_how = REG_COMPLEX;
            continue;
        case 0x09: /* register */
            reg = uleb(&p, end);
            (void)uleb(&p, end);
            if (reg == REG_RBP) r->rbp_how = REG_COMPLEX;
            if (reg == REG_RA) r->ra_how = REG_COMPLEX;
            continue;
        case 0x0a: /* remember_state */
            if (st.n == 8) return -1;
            st.s[st.n++] = *r;
            continue;
        case 0x0b: /* restore_state: the CFA rule too (DWARF 5 6.4.2.4; GCC's
                    * epilogues in the middle of a function rely on it) */
            if (st.n == 0) return -1;
            *r = st.s[--st.n];
            continue;
        case 0x0c: /* def_cfa */
            r->cfa_reg = (int)uleb(&p, end);
            r->cfa_off = (int64_t)uleb(&p, end);
            r->cfa_complex = 0;
            continue;
        case 0x12: /* def_cfa_sf */
            r->cfa_reg = (int)uleb(&p, end);
            r->cfa_off = sleb(&p, end) * cie->data_align;
            r->cfa_complex = 0;
            continue;
        case 0x0d: /* def_cfa_register */
            r->cfa_reg = (int)uleb(&p, end);
            continue;
        case 0x0e: /* def_cfa_offset */
            r->cfa_off = (int64_t)uleb(&p, end);
            continue;
        case 0x13: /* def_cfa_offset_sf */
            r->cfa_off = sleb(&p, end) * cie->data_align;
            continue;
        case 0x0f: { /* def_cfa_expression */
            uint64_t n = uleb(&p, end);
            p += n;
            r->cfa_complex = 1;
            continue;
        }
        case 0x10:   /* expression */
        case 0x16: { /* val_expression */
            reg = uleb(&p, end);
            uint64_t n = uleb(&p, end);
            p += n;
            if (reg == REG_RBP) r->rbp_how = REG_COMPLEX;
            if (reg == REG_RA) r->ra_how = REG_COMPLEX;
            continue;
        }
        case 0x14: /* val_offset */
        case 0x15: /* val_offset_sf */
            reg = uleb(&p, end);
            if (op == 0x14)
                (void)uleb(&p, end);
            else
                (void)sleb(&p, end);
            if (reg == REG_RBP) r->rbp_how = REG_COMPLEX;
            if (reg == REG_RA) r->ra_how = REG_COMPLEX;
            continue;
        case 0x2e: /* GNU_args_size */
            (void)uleb(&p, end);
            continue;
        case 0x2f: /* GNU_negative_offset_extended */
            reg = uleb(&p, end);
            off = -(int64_t)uleb(&p, end) * cie->data_align;
            goto set_at;
        default:
            return -1;
        }
    advance:
        if (loc + adv > target) return 0;
        loc += adv;
        continue;
    set_at:
        if (reg == REG_RBP) {
            r->rbp_how = REG_AT;
            r->rbp_off = off;
        }
        if (reg == REG_RA) {
            r->ra_how = REG_AT;
            r->ra_off = off;
        }
        continue;
    restore:
        if (!init) return -1; /* restore inside the CIE's own program */
        if (reg == REG_RBP) {
            r->rbp_how = init->rbp_how;
            r->rbp_off = init->rbp_off;
        }
        if (reg == REG_RA) {
            r->ra_how = init->ra_how;
            r->ra_off = init->ra_off;
        }
        continue;
    }
    return 0;
}

/* Packs the rules into a rule word, or MC_RULE_OTHER. */
static uint64_t pack(const struct regs *r)
{
    if (r->ra_how == REG_UNDEF) return MC_RULE_END;
    if (r->cfa_complex || (r->cfa_reg != REG_RSP && r->cfa_reg != REG_RBP)) return MC_RULE_OTHER;
    if (r->ra_how != REG_AT || r->ra_off != -8) return MC_RULE_OTHER;
    if (r->rbp_how == REG_COMPLEX) return MC_RULE_OTHER;
    if (r->cfa_off < 8 || r->cfa_off > INT32_MAX) return MC_RULE_OTHER;
    uint64_t w = MC_RULE_STEP;
    if (r->cfa_reg == REG_RBP) w |= MC_RULE_CFA_RBP;
    if (r->rbp_how == REG_AT) {
        if (r->rbp_off < INT16_MIN || r->rbp_off > INT16_MAX) return MC_RULE_OTHER;
        w |= MC_RULE_RBP_SAVED | (uint64_t)(uint16_t)(int16_t)r->rbp_off << 16;
    } else if (r->rbp_how == REG_UNDEF) {
        w |= MC_RULE_RBP_LOST;
    }
    return w | (uint64_t)(uint32_t)r->cfa_off << 32;
}

/* The FDE covering ip in the module whose .eh_frame_hdr is at hdr, or
 * NULL. The header's table is sorted by start address (binary search);
 * only its usual encoding, 4-byte offsets from the header, is read. */
static const uint8_t *find_fde(const uint8_t *hdr, uint64_t ip)
{
    if (hdr[0] != 1 || hdr[3] != 0x3b) return NULL;
    const uint8_t *p = hdr + 4, *end = hdr + 64;
    uint64_t eh_frame, count;
    if (read_enc(&p, end, hdr[1], (uint64_t)(uintptr_t)hdr, &eh_frame) != 0) return NULL;
    if (read_enc(&p, end, hdr[2], (uint64_t)(uintptr_t)hdr, &count) != 0) return NULL;
    const int32_t *tab = (const int32_t *)(const void *)p;
    uint64_t base = (uint64_t)(uintptr_t)hdr, lo = 0, hi = count;
    if (!count || ip < base + (uint64_t)(int64_t)tab[0]) return NULL;
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (base + (uint64_t)(int64_t)tab[2 * mid] <= ip)
            lo = mid;
        else
            hi = mid;
    }
    return (const uint8_t *)(uintptr_t)(base + (uint64_t)(int64_t)tab[2 * lo + 1]);
}

/* The rule at ip from the FDE at fde. */
static uint64_t rule_from_fde(const uint8_t *fde, uint64_t ip)
{
    uint32_t len;
    int32_t cie_off;
    memcpy(&len, fde, 4);
    if (len == 0 || len == 0xffffffffu) return MC_RULE_OTHER;
    memcpy(&cie_off, fde + 4, 4);
    if (cie_off == 0) return MC_RULE_OTHER; /* a CIE, not an FDE */
    struct cie cie;
    if (parse_cie(fde + 4 - cie_off, &cie) != 0 || cie.signal) return MC_RULE_OTHER;
    const uint8_t *p = fde + 8, *end = fde + 4 + len;
    uint64_t start, range;
    if (read_enc(&p, end, cie.fde_enc, 0, &start) != 0) return MC_RULE_OTHER;
    if (read_enc(&p, end, (uint8_t)(cie.fde_enc & 0x0f), 0, &range) != 0) return MC_RULE_OTHER;
    if (ip < start || ip >= start + range) return MC_RULE_OTHER;
    if (cie.has_z) {
        uint64_t n = uleb(&p, end);
        p += n;
    }
    struct regs init = {.cfa_reg = REG_RSP, .rbp_how = REG_SAME, .ra_how = REG_SAME};
    if (run(cie.insn, cie.end, &cie, start, UINT64_MAX, &init, NULL) != 0) return MC_RULE_OTHER;
    struct regs r = init;
    if (run(p, end, &cie, start, ip, &r, &init) != 0) return MC_RULE_OTHER;
    return pack(&r);
}

struct find {
    uint64_t ip;
    const uint8_t *hdr;
    int found;
};

/* dl_iterate_phdr callback: the .eh_frame_hdr of the module holding ip. */
static int find_module(struct dl_phdr_info *info, size_t size, void *data)
{
    struct find *f = data;
    const uint8_t *hdr = NULL;
    int inside = 0;
    (void)size;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uint64_t a = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && f->ip >= a && f->ip < a + ph->p_memsz) inside = 1;
        if (ph->p_type == PT_GNU_EH_FRAME) hdr = (const uint8_t *)(uintptr_t)a;
    }
    if (!inside) return 0;
    f->hdr = hdr;
    f->found = 1;
    return 1;
}

uint64_t mc_cfi_rule(uint64_t ip)
{
    struct find f = {ip, NULL, 0};
    dl_iterate_phdr(find_module, &f);
    if (!f.found || !f.hdr) return MC_RULE_OTHER;
    const uint8_t *fde = find_fde(f.hdr, ip);
    return fde ? rule_from_fde(fde, ip) : MC_RULE_OTHER;
}
