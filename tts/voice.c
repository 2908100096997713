/* voice.c - voice embeddings (.pt zip / safetensors) and the TTS prompt (see vox_tts.h). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_hd.h"
#include "vox_safetensors.h"
#include "vox_tts.h"

/* ---- zip --------------------------------------------------------------------------------- */

static uint32_t rd16(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}
static uint32_t rd32(const unsigned char *p) {
    return rd16(p) | rd16(p + 2) << 16;
}

static uint32_t crc32_buf(const unsigned char *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

typedef struct {
    const unsigned char *buf;
    size_t len;
    const char *path;
    size_t cd_off, cd_n;
    size_t prefix_len; /* "<stem>/" */
    const char *prefix;
} zip_t;

#define ZERR(...) vox_set_error(err, VOX_ERR_FORMAT, __VA_ARGS__)

static int zip_open(zip_t *z, vox_error *err) {
    if (z->len < 22) return ZERR("%s: not a torch .pt zip: file of %zu bytes", z->path, z->len);
    size_t lo = z->len > 22 + 65535 ? z->len - 22 - 65535 : 0, e = 0;
    int found = 0;
    for (size_t i = z->len - 22 + 1; i-- > lo;)
        if (rd32(z->buf + i) == 0x06054b50u) {
            e = i;
            found = 1;
            break;
        }
    if (!found) return ZERR("%s: not a torch .pt zip: no end-of-central-directory record", z->path);
    const unsigned char *r = z->buf + e;
    size_t n = rd16(r + 10), size = rd32(r + 12), off = rd32(r + 16);
    if (rd32(r + 16) == 0xffffffffu || n == 0xffff)
        return ZERR("%s: zip64 archives are not supported", z->path);
    if (off > e || size > e - off)
        return ZERR("%s: central directory at %zu (+%zu) outside the file", z->path, off, size);
    z->cd_off = off;
    z->cd_n = n;
    return VOX_OK;
}

/* Find the entry whose name is prefix + suffix (suffix == NULL: the first "*\/data.pkl",
 * which sets the prefix). Returns its stored bytes. */
static int zip_find(zip_t *z, const char *suffix, const unsigned char **data, size_t *size,
                    vox_error *err) {
    size_t p = z->cd_off;
    for (size_t i = 0; i < z->cd_n; i++) {
        if (p + 46 > z->len || rd32(z->buf + p) != 0x02014b50u)
            return ZERR("%s: central directory entry %zu is corrupted", z->path, i);
        const unsigned char *c = z->buf + p;
        size_t nl = rd16(c + 28), xl = rd16(c + 30), cl = rd16(c + 32);
        if (p + 46 + nl + xl + cl > z->len)
            return ZERR("%s: central directory entry %zu is truncated", z->path, i);
        const char *name = (const char *)c + 46;
        int match = 0;
        if (!suffix) {
            const char *sl = memchr(name, '/', nl);
            if (sl && (size_t)(sl - name) + 1 + 8 == nl && !memcmp(sl + 1, "data.pkl", 8)) {
                z->prefix = name;
                z->prefix_len = (size_t)(sl - name) + 1;
                match = 1;
            }
        } else {
            size_t sl = strlen(suffix);
            match = nl == z->prefix_len + sl && !memcmp(name, z->prefix, z->prefix_len) &&
                    !memcmp(name + z->prefix_len, suffix, sl);
        }
        if (match) {
            uint32_t method = rd16(c + 10), crc = rd32(c + 16);
            size_t csize = rd32(c + 20), usize = rd32(c + 24), lho = rd32(c + 42);
            if (method != 0)
                return ZERR("%s: entry '%.*s': expected stored (method 0), found method %u",
                            z->path, (int)nl, name, (unsigned)method);
            if (csize != usize)
                return ZERR("%s: entry '%.*s': stored sizes differ", z->path, (int)nl, name);
            if (lho + 30 > z->len || rd32(z->buf + lho) != 0x04034b50u)
                return ZERR("%s: entry '%.*s': bad local header", z->path, (int)nl, name);
            size_t dat = lho + 30 + rd16(z->buf + lho + 26) + rd16(z->buf + lho + 28);
            if (dat > z->len || usize > z->len - dat)
                return ZERR("%s: entry '%.*s': data outside the file", z->path, (int)nl, name);
            if (crc32_buf(z->buf + dat, usize) != crc)
                return ZERR("%s: entry '%.*s': CRC-32 mismatch (corrupted file)", z->path, (int)nl,
                            name);
            *data = z->buf + dat;
            *size = usize;
            return VOX_OK;
        }
        p += 46 + nl + xl + cl;
    }
    if (!suffix) return ZERR("%s: not a torch .pt zip: no '<name>/data.pkl' entry", z->path);
    return ZERR("%s: missing entry '%.*s%s'", z->path, (int)z->prefix_len, z->prefix, suffix);
}

/* ---- pickle (the subset torch.save uses for one tensor) ---------------------------------- */

enum {
    PV_MARK,
    PV_INT,
    PV_STR,
    PV_GLOBAL,
    PV_TUPLE,
    PV_PERSID,
    PV_REDUCE,
    PV_BOOL,
    PV_NONE,
    PV_DICT
};

typedef struct {
    int type;
    int64_t i;          /* INT, BOOL */
    const char *s, *s2; /* STR (s, i = len); GLOBAL module s, name s2 (NUL-free, newline end) */
    int a, b;           /* TUPLE: children [a, a+b); PERSID: a; REDUCE: func a, args b */
} pval;

#define PK_MAXV 512
#define PK_MAXS 128

typedef struct {
    pval v[PK_MAXV];
    int nv;
    int kids[PK_MAXV];
    int nk;
    int stack[PK_MAXS];
    int sp;
    int memo[256];
} pvm;

static int pnew(pvm *m, int type) {
    if (m->nv >= PK_MAXV) return -1;
    memset(&m->v[m->nv], 0, sizeof m->v[0]);
    m->v[m->nv].type = type;
    return m->nv++;
}

static int gstr_eq(const pval *g, const char *mod, const char *name) {
    size_t ml = strlen(mod), nl = strlen(name);
    return !strncmp(g->s, mod, ml) && g->s[ml] == '\n' && !strncmp(g->s2, name, nl) &&
           g->s2[nl] == '\n';
}

/* Run the pickle; *root = index of the final object. */
static int pk_run(pvm *m, const unsigned char *p, size_t n, const char *path, int *root,
                  vox_error *err) {
    size_t i = 0;
    memset(m->memo, -1, sizeof m->memo);
    m->nv = m->nk = m->sp = 0;
#define NEED(k)                                                                                    \
    do {                                                                                           \
        if (i + (k) > n) return ZERR("%s: data.pkl truncated at byte %zu", path, i);               \
    } while (0)
#define PUSH(x)                                                                                    \
    do {                                                                                           \
        int x_ = (x);                                                                              \
        if (x_ < 0 || m->sp >= PK_MAXS)                                                            \
            return ZERR("%s: data.pkl too complex for a single tensor", path);                     \
        m->stack[m->sp++] = x_;                                                                    \
    } while (0)
#define POP(dst)                                                                                   \
    do {                                                                                           \
        if (m->sp <= 0) return ZERR("%s: data.pkl stack underflow at byte %zu", path, i);          \
        (dst) = m->stack[--m->sp];                                                                 \
    } while (0)
    while (i < n) {
        unsigned op = p[i++];
        int x, y, z;
        switch (op) {
        case 0x80:
            NEED(1);
            i++;
            break; /* PROTO */
        case 0x95:
            NEED(8);
            i += 8;
            break;  /* FRAME */
        case 'c': { /* GLOBAL */
            const unsigned char *a = p + i, *e1 = memchr(a, '\n', n - i);
            if (!e1) return ZERR("%s: data.pkl: bad GLOBAL", path);
            const unsigned char *e2 = memchr(e1 + 1, '\n', n - (size_t)(e1 + 1 - p));
            if (!e2) return ZERR("%s: data.pkl: bad GLOBAL", path);
            x = pnew(m, PV_GLOBAL);
            if (x >= 0) {
                m->v[x].s = (const char *)a;
                m->v[x].s2 = (const char *)e1 + 1;
            }
            i = (size_t)(e2 + 1 - p);
            PUSH(x);
            break;
        }
        case '(': PUSH(pnew(m, PV_MARK)); break;
        case 'X':
        case 0x8c: { /* BINUNICODE, SHORT_BINUNICODE */
            size_t l;
            if (op == 'X') {
                NEED(4);
                l = rd32(p + i);
                i += 4;
            } else {
                NEED(1);
                l = p[i++];
            }
            NEED(l);
            x = pnew(m, PV_STR);
            if (x >= 0) {
                m->v[x].s = (const char *)p + i;
                m->v[x].i = (int64_t)l;
            }
            i += l;
            PUSH(x);
            break;
        }
        case 'K':
            NEED(1);
            x = pnew(m, PV_INT);
            if (x >= 0) m->v[x].i = p[i];
            i += 1;
            PUSH(x);
            break;
        case 'M':
            NEED(2);
            x = pnew(m, PV_INT);
            if (x >= 0) m->v[x].i = rd16(p + i);
            i += 2;
            PUSH(x);
            break;
        case 'J':
            NEED(4);
            x = pnew(m, PV_INT);
            if (x >= 0) m->v[x].i = (int32_t)rd32(p + i);
            i += 4;
            PUSH(x);
            break;
        case 0x8a: { /* LONG1 */
            NEED(1);
            size_t l = p[i++];
            NEED(l);
            if (l > 8) return ZERR("%s: data.pkl: integer of %zu bytes", path, l);
            uint64_t u = 0;
            for (size_t k = 0; k < l; k++)
                u |= (uint64_t)p[i + k] << (8 * k);
            if (l > 0 && l < 8 && (p[i + l - 1] & 0x80)) u |= ~0ull << (8 * l);
            x = pnew(m, PV_INT);
            if (x >= 0) m->v[x].i = (int64_t)u;
            i += l;
            PUSH(x);
            break;
        }
        case 0x88:
        case 0x89:
            x = pnew(m, PV_BOOL);
            if (x >= 0) m->v[x].i = op == 0x88;
            PUSH(x);
            break;
        case 'N': PUSH(pnew(m, PV_NONE)); break;
        case '}': PUSH(pnew(m, PV_DICT)); break;
        case ')':
            x = pnew(m, PV_TUPLE);
            if (x >= 0) {
                m->v[x].a = m->nk;
                m->v[x].b = 0;
            }
            PUSH(x);
            break;
        case 't':
        case 0x85:
        case 0x86:
        case 0x87: { /* TUPLE, TUPLE1..3 */
            int k0;
            if (op == 't') {
                k0 = m->sp - 1;
                while (k0 >= 0 && m->v[m->stack[k0]].type != PV_MARK)
                    k0--;
                if (k0 < 0) return ZERR("%s: data.pkl: TUPLE without MARK", path);
            } else {
                k0 = m->sp - (int)(op - 0x84) - 1;
                if (k0 + 1 < 0) return ZERR("%s: data.pkl stack underflow", path);
            }
            int cnt = m->sp - k0 - 1;
            if (m->nk + cnt > PK_MAXV) return ZERR("%s: data.pkl too complex", path);
            x = pnew(m, PV_TUPLE);
            if (x < 0) return ZERR("%s: data.pkl too complex", path);
            m->v[x].a = m->nk;
            m->v[x].b = cnt;
            for (int k = 0; k < cnt; k++)
                m->kids[m->nk++] = m->stack[k0 + 1 + k];
            m->sp = op == 't' ? k0 : k0 + 1;
            PUSH(x);
            break;
        }
        case 'Q':
            POP(y);
            x = pnew(m, PV_PERSID);
            if (x >= 0) m->v[x].a = y;
            PUSH(x);
            break;
        case 'R':
            POP(y);
            POP(z);
            x = pnew(m, PV_REDUCE);
            if (x >= 0) {
                m->v[x].a = z;
                m->v[x].b = y;
            }
            PUSH(x);
            break;
        case 'q':
            NEED(1);
            if (m->sp <= 0) return ZERR("%s: data.pkl: BINPUT on empty stack", path);
            m->memo[p[i++]] = m->stack[m->sp - 1];
            break;
        case 'r':
            NEED(4);
            {
                uint32_t k = rd32(p + i);
                i += 4;
                if (k > 255 || m->sp <= 0)
                    return ZERR("%s: data.pkl: memo index %u", path, (unsigned)k);
                m->memo[k] = m->stack[m->sp - 1];
            }
            break;
        case 0x94:
            if (m->sp <= 0) return ZERR("%s: data.pkl: MEMOIZE on empty stack", path);
            {
                int k = 0;
                while (k < 256 && m->memo[k] >= 0)
                    k++;
                if (k == 256) return ZERR("%s: data.pkl too complex", path);
                m->memo[k] = m->stack[m->sp - 1];
            }
            break;
        case 'h':
            NEED(1);
            x = m->memo[p[i++]];
            if (x < 0) return ZERR("%s: data.pkl: BINGET of an unset memo", path);
            PUSH(x);
            break;
        case 'j':
            NEED(4);
            {
                uint32_t k = rd32(p + i);
                i += 4;
                x = k < 256 ? m->memo[k] : -1;
                if (x < 0) return ZERR("%s: data.pkl: bad LONG_BINGET", path);
                PUSH(x);
            }
            break;
        case '.':
            if (m->sp != 1) return ZERR("%s: data.pkl: STOP with %d stack items", path, m->sp);
            *root = m->stack[0];
            return VOX_OK;
        default:
            return ZERR("%s: data.pkl: unsupported pickle opcode 0x%02x at byte %zu (expected a "
                        "single tensor saved by torch.save)",
                        path, op, i - 1);
        }
    }
    return ZERR("%s: data.pkl ends without STOP", path);
#undef NEED
#undef PUSH
#undef POP
}

static const pval *kid(const pvm *m, const pval *t, int k) {
    return &m->v[m->kids[t->a + k]];
}

static int pt_load(const char *path, const unsigned char *buf, size_t len, int dim,
                   vox_tts_voice *out, vox_error *err) {
    zip_t z = {buf, len, path, 0, 0, 0, NULL};
    const unsigned char *pkl, *bo;
    size_t pkl_n, bo_n;
    int rc = zip_open(&z, err);
    if (!rc) rc = zip_find(&z, NULL, &pkl, &pkl_n, err);
    if (rc) return rc;
    if (zip_find(&z, "byteorder", &bo, &bo_n, err) == VOX_OK) {
        if (bo_n != 6 || memcmp(bo, "little", 6))
            return ZERR("%s: byteorder: expected 'little', found '%.*s'", path, (int)bo_n, bo);
    }
    pvm *m = vox_malloc(sizeof *m, err);
    if (!m) return VOX_ERR_NOMEM;
    int root = -1;
    rc = pk_run(m, pkl, pkl_n, path, &root, err);
    if (rc) goto done;
    /* REDUCE(torch._utils._rebuild_tensor_v2, (PERSID(storage), offset, shape, stride, ...)) */
    const pval *r = &m->v[root];
    const pval *fn = r->type == PV_REDUCE ? &m->v[r->a] : NULL;
    const pval *args = r->type == PV_REDUCE ? &m->v[r->b] : NULL;
    if (!fn || fn->type != PV_GLOBAL || !gstr_eq(fn, "torch._utils", "_rebuild_tensor_v2") ||
        args->type != PV_TUPLE || args->b < 4) {
        rc = ZERR("%s: data.pkl: expected torch._utils._rebuild_tensor_v2(storage, offset, "
                  "shape, stride, ...), found another object",
                  path);
        goto done;
    }
    const pval *ps = kid(m, args, 0), *po = kid(m, args, 1), *psh = kid(m, args, 2),
               *pst = kid(m, args, 3);
    const pval *sid = ps->type == PV_PERSID ? &m->v[ps->a] : NULL;
    if (!sid || sid->type != PV_TUPLE || sid->b != 5 || kid(m, sid, 0)->type != PV_STR ||
        kid(m, sid, 1)->type != PV_GLOBAL || kid(m, sid, 2)->type != PV_STR ||
        kid(m, sid, 4)->type != PV_INT || kid(m, sid, 0)->i != 7 ||
        memcmp(kid(m, sid, 0)->s, "storage", 7)) {
        rc = ZERR("%s: data.pkl: expected a ('storage', type, key, location, numel) persistent id",
                  path);
        goto done;
    }
    const pval *st = kid(m, sid, 1);
    vox_dtype dt;
    if (gstr_eq(st, "torch", "BFloat16Storage"))
        dt = VOX_DT_BF16;
    else if (gstr_eq(st, "torch", "HalfStorage"))
        dt = VOX_DT_F16;
    else if (gstr_eq(st, "torch", "FloatStorage"))
        dt = VOX_DT_F32;
    else {
        const char *nl = memchr(st->s2, '\n', 64);
        rc = ZERR("%s: storage type: expected BFloat16Storage, HalfStorage or FloatStorage, found "
                  "%.*s",
                  path, nl ? (int)(nl - st->s2) : 16, st->s2);
        goto done;
    }
    int64_t numel = kid(m, sid, 4)->i;
    if (po->type != PV_INT || psh->type != PV_TUPLE || pst->type != PV_TUPLE || psh->b != 2 ||
        pst->b != 2 || kid(m, psh, 0)->type != PV_INT || kid(m, psh, 1)->type != PV_INT ||
        kid(m, pst, 0)->type != PV_INT || kid(m, pst, 1)->type != PV_INT) {
        rc = ZERR("%s: tensor: expected a 2-D shape and stride, found %d-D", path,
                  psh->type == PV_TUPLE ? psh->b : -1);
        goto done;
    }
    int64_t rows = kid(m, psh, 0)->i, cols = kid(m, psh, 1)->i, off = po->i;
    if (rows <= 0 || cols <= 0 || rows > (1 << 24) || cols > (1 << 20)) {
        rc = ZERR("%s: tensor shape [%lld, %lld] out of range", path, (long long)rows,
                  (long long)cols);
        goto done;
    }
    if (kid(m, pst, 0)->i != cols || kid(m, pst, 1)->i != 1) {
        rc = ZERR("%s: tensor stride: expected contiguous (%lld, 1), found (%lld, %lld)", path,
                  (long long)cols, (long long)kid(m, pst, 0)->i, (long long)kid(m, pst, 1)->i);
        goto done;
    }
    if (off < 0 || numel < off || rows * cols > numel - off) {
        rc = ZERR("%s: storage of %lld elements cannot hold offset %lld + [%lld, %lld]", path,
                  (long long)numel, (long long)off, (long long)rows, (long long)cols);
        goto done;
    }
    if (dim > 0 && cols != dim) {
        rc = ZERR("%s: voice embedding: expected %d columns (model dim), found %lld", path, dim,
                  (long long)cols);
        goto done;
    }
    char key[80];
    const pval *k = kid(m, sid, 2);
    if (k->i <= 0 || k->i > 64) {
        rc = ZERR("%s: storage key of %lld bytes", path, (long long)k->i);
        goto done;
    }
    snprintf(key, sizeof key, "data/%.*s", (int)k->i, k->s);
    const unsigned char *data;
    size_t dn;
    rc = zip_find(&z, key, &data, &dn, err);
    if (rc) goto done;
    size_t es = vox_dtype_size(dt);
    if (dn != (size_t)numel * es) {
        rc = ZERR("%s: entry '%s': expected %lld bytes (%lld elements), found %zu", path, key,
                  (long long)numel * (long long)es, (long long)numel, dn);
        goto done;
    }
    out->emb = vox_malloc((size_t)rows * (size_t)cols * sizeof(float), err);
    if (!out->emb) {
        rc = VOX_ERR_NOMEM;
        goto done;
    }
    out->rows = (int)rows;
    out->dim = (int)cols;
    const unsigned char *src = data + (size_t)off * es;
    for (size_t e = 0; e < (size_t)(rows * cols); e++) {
        const unsigned char *q = src + e * es;
        float f;
        if (dt == VOX_DT_BF16)
            f = vox_bf16_to_f32((uint16_t)rd16(q));
        else if (dt == VOX_DT_F16)
            f = vox_f16_to_f32((uint16_t)rd16(q));
        else {
            uint32_t u = rd32(q);
            memcpy(&f, &u, 4);
        }
        out->emb[e] = f;
    }
done:
    free(m);
    return rc;
}

static int st_voice(const char *path, int dim, vox_tts_voice *out, vox_error *err) {
    vox_st_file *f = vox_st_open(path, err);
    if (!f) return err ? err->code : VOX_ERR_FORMAT;
    const vox_st_tensor *t = vox_st_find(f, "embedding");
    if (!t && vox_st_count(f) == 1) t = vox_st_at(f, 0);
    int rc = VOX_OK;
    if (!t) {
        rc = ZERR("%s: expected a tensor 'embedding' (or a single tensor), found %d tensors", path,
                  vox_st_count(f));
    } else if (t->ndim != 2 || t->shape[0] <= 0 || (dim > 0 && t->shape[1] != dim) ||
               (t->dtype != VOX_DT_BF16 && t->dtype != VOX_DT_F16 && t->dtype != VOX_DT_F32)) {
        rc = ZERR("%s: tensor '%s': expected a BF16/F16/F32 [N, %d] matrix, found %s %d-D [%lld, "
                  "%lld]",
                  path, t->name, dim, vox_dtype_name(t->dtype), t->ndim,
                  (long long)(t->ndim > 0 ? t->shape[0] : 0),
                  (long long)(t->ndim > 1 ? t->shape[1] : 0));
    } else {
        size_t n = (size_t)t->numel;
        out->emb = vox_malloc(n * sizeof(float), err);
        if (!out->emb) rc = VOX_ERR_NOMEM;
        for (size_t e = 0; !rc && e < n; e++) {
            const unsigned char *q = (const unsigned char *)t->data + e * vox_dtype_size(t->dtype);
            float v;
            if (t->dtype == VOX_DT_BF16)
                v = vox_bf16_to_f32((uint16_t)rd16(q));
            else if (t->dtype == VOX_DT_F16)
                v = vox_f16_to_f32((uint16_t)rd16(q));
            else
                memcpy(&v, q, 4);
            out->emb[e] = v;
        }
        if (!rc) {
            out->rows = (int)t->shape[0];
            out->dim = (int)t->shape[1];
        }
    }
    vox_st_close(f);
    return rc;
}

int vox_tts_voice_load(const char *path, int dim, vox_tts_voice *out, vox_error *err) {
    if (!path || !out) return vox_set_error(err, VOX_ERR_ARG, "vox_tts_voice_load: NULL argument");
    memset(out, 0, sizeof *out);
    size_t len = 0;
    char *buf = vox_read_file(path, &len, err);
    if (!buf) return err ? err->code : VOX_ERR_IO;
    int rc;
    if (len >= 4 && !memcmp(buf, "PK\3\4", 4)) {
        rc = pt_load(path, (const unsigned char *)buf, len, dim, out, err);
        free(buf);
    } else {
        free(buf);
        rc = st_voice(path, dim, out, err);
    }
    if (rc) vox_tts_voice_free(out);
    return rc;
}

void vox_tts_voice_free(vox_tts_voice *v) {
    if (!v) return;
    free(v->emb);
    memset(v, 0, sizeof *v);
}

/* ---- prompt ------------------------------------------------------------------------------ */

int vox_tts_prompt(const vox_tekken *tok, const char *text, int n_audio, int32_t **ids,
                   size_t *n_ids, int *audio_pos, vox_error *err) {
    if (!tok || !text || !ids || !n_ids || n_audio < 0)
        return vox_set_error(err, VOX_ERR_ARG, "vox_tts_prompt: bad argument");
    const char *names[5] = {"<s>", "[BEGIN_AUDIO]", "[AUDIO]", "[NEXT_AUDIO_TEXT]",
                            "[REPEAT_AUDIO_TEXT]"};
    int sp[5];
    for (int i = 0; i < 5; i++) {
        sp[i] = vox_tekken_special_id(tok, names[i]);
        if (sp[i] < 0)
            return vox_set_error(err, VOX_ERR_NOTFOUND,
                                 "tekken.json: special token '%s' needed by the TTS prompt is "
                                 "missing",
                                 names[i]);
    }
    int32_t *t = NULL;
    size_t nt = 0;
    int rc = vox_tekken_encode(tok, text, strlen(text), &t, &nt, err);
    if (rc) return rc;
    size_t n = 2 + (size_t)n_audio + 1 + nt + 2;
    int32_t *o = vox_malloc(n * sizeof *o, err);
    if (!o) {
        free(t);
        return VOX_ERR_NOMEM;
    }
    size_t k = 0;
    o[k++] = sp[0];
    o[k++] = sp[1];
    for (int i = 0; i < n_audio; i++)
        o[k++] = sp[2];
    o[k++] = sp[3];
    for (size_t i = 0; i < nt; i++)
        o[k++] = t[i];
    o[k++] = sp[4];
    o[k++] = sp[1];
    free(t);
    *ids = o;
    *n_ids = k;
    if (audio_pos) *audio_pos = 2;
    return VOX_OK;
}
