/* pt_write.c - one tensor as a torch.save zip (see vox_pt_write.h). */
#define _POSIX_C_SOURCE 200809L
#include "vox_pt_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- growable byte buffer ---- */
typedef struct {
    unsigned char *p;
    size_t n, cap;
    int oom;
} pbuf;

static void put(pbuf *b, const void *src, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 1024;
        while (c < b->n + n)
            c *= 2;
        unsigned char *q = realloc(b->p, c);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = c;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put1(pbuf *b, unsigned v) {
    unsigned char c = (unsigned char)v;
    put(b, &c, 1);
}
static void put2(pbuf *b, unsigned v) {
    put1(b, v & 0xff);
    put1(b, (v >> 8) & 0xff);
}
static void put4(pbuf *b, uint32_t v) {
    put2(b, v & 0xffff);
    put2(b, v >> 16);
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

/* pickle helpers (protocol 2) */
static void pk_str(pbuf *b, const char *s) {
    put1(b, 'X'); /* BINUNICODE */
    put4(b, (uint32_t)strlen(s));
    put(b, s, strlen(s));
}
static void pk_int(pbuf *b, int64_t v) {
    if (v >= 0 && v < 256) {
        put1(b, 'K');
        put1(b, (unsigned)v);
    } else if (v >= 0 && v < 65536) {
        put1(b, 'M');
        put2(b, (unsigned)v);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        put1(b, 'J');
        put4(b, (uint32_t)(int32_t)v);
    } else { /* LONG1, 8 bytes little-endian two's complement */
        put1(b, 0x8a);
        put1(b, 8);
        for (int i = 0; i < 8; i++)
            put1(b, (unsigned)(((uint64_t)v >> (8 * i)) & 0xff));
    }
}
static void pk_global(pbuf *b, const char *mod, const char *name) {
    put1(b, 'c');
    put(b, mod, strlen(mod));
    put1(b, '\n');
    put(b, name, strlen(name));
    put1(b, '\n');
}
static void pk_tuple_ints(pbuf *b, int n, const int64_t *v) {
    put1(b, '(');
    for (int i = 0; i < n; i++)
        pk_int(b, v[i]);
    put1(b, 't');
}

typedef struct {
    char name[160];
    uint32_t crc, size, off;
} zent;

/* Local header with the data aligned to 64 bytes by an "FB" extra field (as torch does). */
static void zip_add(pbuf *z, zent *e, const char *name, const void *data, size_t n) {
    snprintf(e->name, sizeof e->name, "%s", name);
    e->crc = crc32_buf(data, n);
    e->size = (uint32_t)n;
    e->off = (uint32_t)z->n;
    size_t nl = strlen(name);
    size_t hdr = 30 + nl;
    size_t pad = (64 - (z->n + hdr + 4) % 64) % 64;
    put4(z, 0x04034b50);
    put2(z, 20);
    put2(z, 0); /* flags */
    put2(z, 0); /* stored */
    put2(z, 0);
    put2(z, 0x21); /* dos time/date: 1980-01-01 */
    put4(z, e->crc);
    put4(z, e->size);
    put4(z, e->size);
    put2(z, (unsigned)nl);
    put2(z, (unsigned)(4 + pad));
    put(z, name, nl);
    put2(z, 0x4246); /* "FB" */
    put2(z, (unsigned)pad);
    for (size_t i = 0; i < pad; i++)
        put1(z, 'Z');
    put(z, data, n);
}

int vox_pt_write(const char *path, vox_dtype dtype, int ndim, const int64_t *shape,
                 const void *data, vox_error *err) {
    const char *storage = dtype == VOX_DT_BF16  ? "BFloat16Storage"
                          : dtype == VOX_DT_F32 ? "FloatStorage"
                          : dtype == VOX_DT_F16 ? "HalfStorage"
                                                : NULL;
    if (!storage) return vox_set_error(err, VOX_ERR_ARG, "%s: unsupported dtype for .pt", path);
    if (ndim < 1 || ndim > 4) return vox_set_error(err, VOX_ERR_ARG, "%s: ndim %d", path, ndim);
    int64_t numel = 1, stride[4];
    for (int i = ndim - 1; i >= 0; i--) {
        if (shape[i] < 0) return vox_set_error(err, VOX_ERR_ARG, "%s: negative dim", path);
        stride[i] = numel;
        numel *= shape[i];
    }
    size_t nbytes = (size_t)numel * vox_dtype_size(dtype);
    if (nbytes > 0xffffffffu / 2)
        return vox_set_error(err, VOX_ERR_ARG, "%s: tensor too large for a zip32 .pt", path);
    /* stem = basename without extension */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char stem[96];
    snprintf(stem, sizeof stem, "%s", base);
    char *dot = strrchr(stem, '.');
    if (dot && dot != stem) *dot = '\0';

    pbuf pk = {0}, z = {0};
    put1(&pk, 0x80);
    put1(&pk, 2);
    pk_global(&pk, "torch._utils", "_rebuild_tensor_v2");
    put1(&pk, '(');
    put1(&pk, '(');
    pk_str(&pk, "storage");
    pk_global(&pk, "torch", storage);
    pk_str(&pk, "0");
    pk_str(&pk, "cpu");
    pk_int(&pk, numel);
    put1(&pk, 't');
    put1(&pk, 'Q'); /* BINPERSID */
    pk_int(&pk, 0);
    pk_tuple_ints(&pk, ndim, shape);
    pk_tuple_ints(&pk, ndim, stride);
    put1(&pk, 0x89); /* NEWFALSE */
    pk_global(&pk, "collections", "OrderedDict");
    put1(&pk, ')');
    put1(&pk, 'R');
    put1(&pk, 't');
    put1(&pk, 'R');
    put1(&pk, '.');

    zent ents[6];
    char nm[160];
    const struct {
        const char *suffix;
        const void *d;
        size_t n;
    } items[6] = {
        {"data.pkl", pk.p, pk.n},   {".format_version", "1", 1}, {".storage_alignment", "64", 2},
        {"byteorder", "little", 6}, {"data/0", data, nbytes},    {"version", "3\n", 2},
    };
    int rc = VOX_OK;
    if (pk.oom) rc = vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; i < 6 && !rc; i++) {
        snprintf(nm, sizeof nm, "%s/%s", stem, items[i].suffix);
        zip_add(&z, &ents[i], nm, items[i].d ? items[i].d : "", items[i].n);
    }
    uint32_t cd_off = (uint32_t)z.n;
    for (int i = 0; i < 6 && !rc; i++) {
        size_t nl = strlen(ents[i].name);
        put4(&z, 0x02014b50);
        put2(&z, 20);
        put2(&z, 20);
        put2(&z, 0);
        put2(&z, 0);
        put2(&z, 0);
        put2(&z, 0x21);
        put4(&z, ents[i].crc);
        put4(&z, ents[i].size);
        put4(&z, ents[i].size);
        put2(&z, (unsigned)nl);
        put2(&z, 0);
        put2(&z, 0);
        put2(&z, 0);
        put2(&z, 0);
        put4(&z, 0);
        put4(&z, ents[i].off);
        put(&z, ents[i].name, nl);
    }
    uint32_t cd_size = (uint32_t)z.n - cd_off;
    put4(&z, 0x06054b50);
    put2(&z, 0);
    put2(&z, 0);
    put2(&z, 6);
    put2(&z, 6);
    put4(&z, cd_size);
    put4(&z, cd_off);
    put2(&z, 0);
    if (!rc && z.oom) rc = vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory", path);
    if (!rc) {
        FILE *fp = fopen(path, "wb");
        if (!fp) {
            rc = vox_set_error(err, VOX_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        } else {
            int bad = fwrite(z.p, 1, z.n, fp) != z.n;
            if (fclose(fp) != 0) bad = 1;
            if (bad) rc = vox_set_error(err, VOX_ERR_IO, "%s: write failed", path);
        }
    }
    free(pk.p);
    free(z.p);
    return rc;
}
