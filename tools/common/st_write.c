/* st_write.c - safetensors writer (see vox_st_write.h). */
#define _POSIX_C_SOURCE 200809L
#include "vox_st_write.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;
    vox_dtype dtype;
    int ndim;
    int64_t shape[8];
    uint64_t nbytes;
    void *data;          /* copied data or NULL */
    vox_stw_gen_fn gen;  /* or a generator */
    void *ctx;
    uint64_t begin;      /* data offset, set by layout() */
} stw_tensor;

struct vox_stw {
    stw_tensor *t;
    int n, cap;
    int metadata;
    int *order; /* layout order, indices into t */
};

vox_stw *vox_stw_new(vox_error *err) {
    vox_stw *w = vox_calloc(1, sizeof *w, err);
    if (w) w->metadata = 1;
    return w;
}

void vox_stw_free(vox_stw *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->t);
    free(w->order);
    free(w);
}

void vox_stw_set_metadata(vox_stw *w, int with_metadata) {
    if (w) w->metadata = with_metadata ? 1 : 0;
}

int vox_stw_count(const vox_stw *w) { return w ? w->n : 0; }

uint64_t vox_stw_data_bytes(const vox_stw *w) {
    uint64_t s = 0;
    for (int i = 0; w && i < w->n; i++) s += w->t[i].nbytes;
    return s;
}

static int add_common(vox_stw *w, const char *name, vox_dtype dtype, int ndim,
                      const int64_t *shape, stw_tensor **out, vox_error *err) {
    if (!w || !name || !*name || ndim < 0 || ndim > 8 || (ndim && !shape))
        return vox_set_error(err, VOX_ERR_ARG, "vox_stw_add: invalid arguments for '%s'",
                             name ? name : "(null)");
    if (strcmp(name, "__metadata__") == 0)
        return vox_set_error(err, VOX_ERR_ARG, "vox_stw_add: '__metadata__' is reserved");
    size_t esz = vox_dtype_size(dtype);
    if (!esz) return vox_set_error(err, VOX_ERR_ARG, "vox_stw_add: '%s': bad dtype", name);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return vox_set_error(err, VOX_ERR_ARG, "vox_stw_add: duplicate tensor '%s'", name);
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return vox_set_error(err, VOX_ERR_ARG, "vox_stw_add: '%s': negative dim", name);
        numel *= (uint64_t)shape[i];
    }
    if (w->n == w->cap) {
        int nc = w->cap ? w->cap * 2 : 64;
        stw_tensor *nt = realloc(w->t, (size_t)nc * sizeof *nt);
        if (!nt) return vox_set_error(err, VOX_ERR_NOMEM, "vox_stw_add: out of memory");
        w->t = nt;
        w->cap = nc;
    }
    stw_tensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    size_t l = strlen(name) + 1;
    t->name = vox_malloc(l, err);
    if (!t->name) return VOX_ERR_NOMEM;
    memcpy(t->name, name, l);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->nbytes = numel * esz;
    *out = t;
    return VOX_OK;
}

int vox_stw_add(vox_stw *w, const char *name, vox_dtype dtype, int ndim, const int64_t *shape,
                const void *data, vox_error *err) {
    stw_tensor *t;
    int rc = add_common(w, name, dtype, ndim, shape, &t, err);
    if (rc) return rc;
    t->data = vox_calloc(1, (size_t)(t->nbytes ? t->nbytes : 1), err);
    if (!t->data) {
        free(t->name);
        return VOX_ERR_NOMEM;
    }
    if (data && t->nbytes) memcpy(t->data, data, (size_t)t->nbytes);
    w->n++;
    return VOX_OK;
}

int vox_stw_add_gen(vox_stw *w, const char *name, vox_dtype dtype, int ndim,
                    const int64_t *shape, vox_stw_gen_fn gen, void *ctx, vox_error *err) {
    if (!gen) return vox_set_error(err, VOX_ERR_ARG, "vox_stw_add_gen: no generator");
    stw_tensor *t;
    int rc = add_common(w, name, dtype, ndim, shape, &t, err);
    if (rc) return rc;
    t->gen = gen;
    t->ctx = ctx;
    w->n++;
    return VOX_OK;
}

typedef struct {
    size_t esz;
    const char *name;
    int idx;
} stw_key;

static int cmp_key(const void *a, const void *b) {
    const stw_key *x = a, *y = b;
    if (x->esz != y->esz) return x->esz > y->esz ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int layout(vox_stw *w, vox_error *err) {
    free(w->order);
    w->order = vox_malloc((size_t)(w->n ? w->n : 1) * sizeof *w->order, err);
    stw_key *k = vox_malloc((size_t)(w->n ? w->n : 1) * sizeof *k, err);
    if (!w->order || !k) {
        free(k);
        return VOX_ERR_NOMEM;
    }
    for (int i = 0; i < w->n; i++) {
        k[i].esz = vox_dtype_size(w->t[i].dtype);
        k[i].name = w->t[i].name;
        k[i].idx = i;
    }
    qsort(k, (size_t)w->n, sizeof *k, cmp_key);
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        w->order[i] = k[i].idx;
        w->t[k[i].idx].begin = off;
        off += w->t[k[i].idx].nbytes;
    }
    free(k);
    return VOX_OK;
}

/* Growable string. */
typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_add(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int need = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (need < 0) {
            b->oom = 1;
            return;
        }
        if (b->s && b->len + (size_t)need < b->cap) {
            b->len += (size_t)need;
            return;
        }
        size_t nc = b->cap ? b->cap * 2 : 4096;
        while (nc < b->len + (size_t)need + 1) nc *= 2;
        char *ns = realloc(b->s, nc);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
}

/* JSON string escaping for names (quotes, backslashes, control bytes). */
static void sb_json_str(sbuf *b, const char *s) {
    sb_add(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            sb_add(b, "\\%c", *p);
        else if (*p < 0x20)
            sb_add(b, "\\u%04x", *p);
        else
            sb_add(b, "%c", *p);
    }
    sb_add(b, "\"");
}

char *vox_stw_header(vox_stw *w, vox_error *err) {
    if (!w) {
        vox_set_error(err, VOX_ERR_ARG, "vox_stw_header: no writer");
        return NULL;
    }
    if (layout(w, err)) return NULL;
    sbuf b = {0};
    sb_add(&b, "{");
    int first = 1;
    if (w->metadata) {
        sb_add(&b, "\"__metadata__\":{\"format\":\"pt\"}");
        first = 0;
    }
    for (int i = 0; i < w->n; i++) {
        const stw_tensor *t = &w->t[w->order[i]];
        if (!first) sb_add(&b, ",");
        first = 0;
        sb_json_str(&b, t->name);
        sb_add(&b, ":{\"dtype\":\"%s\",\"shape\":[", vox_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) sb_add(&b, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        sb_add(&b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)t->begin,
               (unsigned long long)(t->begin + t->nbytes));
    }
    sb_add(&b, "}");
    while (!b.oom && b.len % 8) sb_add(&b, " ");
    if (b.oom) {
        free(b.s);
        vox_set_error(err, VOX_ERR_NOMEM, "vox_stw_header: out of memory");
        return NULL;
    }
    return b.s;
}

static int put_u64le(FILE *fp, uint64_t v) {
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(v >> (8 * i));
    return fwrite(le, 1, 8, fp) == 8 ? 0 : -1;
}

int vox_stw_write(vox_stw *w, const char *path, vox_error *err) {
    if (!w || !path) return vox_set_error(err, VOX_ERR_ARG, "vox_stw_write: invalid arguments");
    char *hdr = vox_stw_header(w, err);
    if (!hdr) return err ? err->code : VOX_ERR_NOMEM;
    size_t plen = strlen(path);
    char *tmp = vox_malloc(plen + 5, err);
    void *chunk = NULL;
    FILE *fp = NULL;
    int rc = VOX_OK;
    if (!tmp) {
        free(hdr);
        return VOX_ERR_NOMEM;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    fp = fopen(tmp, "wb");
    if (!fp) {
        rc = vox_set_error(err, VOX_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        goto done;
    }
    size_t hlen = strlen(hdr);
    if (put_u64le(fp, hlen) || fwrite(hdr, 1, hlen, fp) != hlen) goto ioerr;
    chunk = vox_malloc((size_t)VOX_STW_CHUNK * 8, err);
    if (!chunk) {
        rc = VOX_ERR_NOMEM;
        goto done;
    }
    for (int i = 0; i < w->n; i++) {
        const stw_tensor *t = &w->t[w->order[i]];
        if (t->data) {
            if (t->nbytes && fwrite(t->data, 1, (size_t)t->nbytes, fp) != t->nbytes) goto ioerr;
            continue;
        }
        size_t esz = vox_dtype_size(t->dtype);
        int64_t numel = (int64_t)(t->nbytes / esz);
        for (int64_t first = 0; first < numel; first += VOX_STW_CHUNK) {
            int64_t n = numel - first < VOX_STW_CHUNK ? numel - first : VOX_STW_CHUNK;
            rc = t->gen(t->ctx, chunk, first, n, err);
            if (rc) goto done;
            if (fwrite(chunk, esz, (size_t)n, fp) != (size_t)n) goto ioerr;
        }
    }
    if (fflush(fp) != 0) goto ioerr;
    if (fclose(fp) != 0) {
        fp = NULL;
        goto ioerr;
    }
    fp = NULL;
    if (rename(tmp, path) != 0) {
        rc = vox_set_error(err, VOX_ERR_IO, "%s: cannot rename from %s: %s", path, tmp,
                           strerror(errno));
        goto done;
    }
    goto done;
ioerr:
    rc = vox_set_error(err, VOX_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
done:
    if (fp) fclose(fp);
    if (rc) remove(tmp);
    free(chunk);
    free(tmp);
    free(hdr);
    return rc;
}

int vox_st_write_raw(const char *path, uint64_t declared_len, const char *header, size_t hlen,
                     const void *data, size_t data_len, vox_error *err) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return vox_set_error(err, VOX_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    int bad = put_u64le(fp, declared_len) != 0;
    if (!bad && hlen) bad = fwrite(header, 1, hlen, fp) != hlen;
    if (!bad && data_len) bad = fwrite(data, 1, data_len, fp) != data_len;
    if (fclose(fp) != 0) bad = 1;
    if (bad) return vox_set_error(err, VOX_ERR_IO, "%s: write failed", path);
    return VOX_OK;
}
