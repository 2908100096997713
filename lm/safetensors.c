/* safetensors.c - read-only mmap'd safetensors files with full header validation
 * (see vox_safetensors.h). */
#define _POSIX_C_SOURCE 200809L
#include "vox_safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct vox_st_file {
    char *path;            /* owned copy of the path given to vox_st_open */
    void *map;             /* whole file, PROT_READ, MAP_PRIVATE */
    size_t map_len;        /* file size in bytes */
    int n;                 /* number of tensors */
    vox_st_tensor *tensors; /* [n], in file order */
    char *names;           /* all names, NUL-separated; tensors[i].name points in here */
};

/* Largest integer a JSON number (a double) holds exactly. */
#define ST_MAX_EXACT 9007199254740992.0 /* 2^53 */

static const char *json_type_name(const cJSON *v) {
    if (!v) return "nothing";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "an invalid value";
}

static int parse_dtype(const char *s, vox_dtype *out) {
    static const struct { const char *name; vox_dtype dt; } tab[] = {
        {"BF16", VOX_DT_BF16}, {"F16", VOX_DT_F16}, {"F32", VOX_DT_F32},
        {"I32", VOX_DT_I32},   {"I64", VOX_DT_I64}, {"U8", VOX_DT_U8},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        if (strcmp(s, tab[i].name) == 0) {
            *out = tab[i].dt;
            return 1;
        }
    }
    return 0;
}

/* A JSON number that is a non-negative integer exactly representable: 1 and *out, else 0. */
static int json_uint(const cJSON *v, int64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > ST_MAX_EXACT || floor(d) != d) return 0;
    *out = (int64_t)d;
    return 1;
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t len = 0;
    len += (size_t)snprintf(buf + len, cap - len, "[");
    for (int i = 0; i < ndim && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

/* Validate one header entry into *t (name, data set by the caller). */
static int parse_entry(const char *path, const char *name, const cJSON *e, size_t data_len,
                       size_t data_start, vox_st_tensor *t, int64_t *begin_out, int64_t *end_out,
                       vox_error *err) {
    if (!cJSON_IsObject(e))
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: tensor '%s': expected an object, found %s",
                             path, name, json_type_name(e));
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(jd))
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: tensor '%s': expected \"dtype\" as a string, found %s", path, name,
                             json_type_name(jd));
    if (!parse_dtype(jd->valuestring, &t->dtype))
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: tensor '%s': unknown dtype \"%s\" (expected BF16, F16, F32, I32, "
                             "I64 or U8)", path, name, jd->valuestring);
    if (!cJSON_IsArray(js))
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: tensor '%s': expected \"shape\" as an array, found %s", path, name,
                             json_type_name(js));
    int nd = cJSON_GetArraySize(js);
    if (nd > VOX_ST_MAX_DIMS)
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: tensor '%s': expected at most %d dims, found %d", path, name,
                             VOX_ST_MAX_DIMS, nd);
    t->ndim = nd;
    size_t esz = vox_dtype_size(t->dtype);
    /* numel * esz must not exceed the data area, so any product above it is already wrong;
     * clamp to avoid overflow while still reporting the size mismatch. */
    double limit = (double)data_len / (double)esz + 1.0;
    int64_t numel = 1;
    int huge = 0;
    int i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, js) {
        int64_t v;
        if (!json_uint(d, &v)) {
            char vb[64];
            if (cJSON_IsNumber(d))
                snprintf(vb, sizeof vb, "%g", d->valuedouble);
            else
                snprintf(vb, sizeof vb, "%s", json_type_name(d));
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "%s: tensor '%s': shape[%d]: expected a non-negative integer, "
                                 "found %s", path, name, i, vb);
        }
        t->shape[i++] = v;
        if (!huge && v != 0 && (double)numel * (double)v > limit) huge = 1;
        if (!huge) numel *= v;
    }
    for (int k = 0; k < nd; k++)
        if (t->shape[k] == 0) {
            numel = 0;
            huge = 0;
        }
    t->numel = numel;

    int64_t ob = 0, oe = 0;
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || !json_uint(jo->child, &ob) ||
        !json_uint(jo->child->next, &oe)) {
        char *txt = jo ? cJSON_PrintUnformatted(jo) : NULL;
        vox_set_error(err, VOX_ERR_FORMAT,
                      "%s: tensor '%s': expected \"data_offsets\" as [begin, end] non-negative "
                      "integers, found %.80s", path, name, txt ? txt : json_type_name(jo));
        free(txt);
        return VOX_ERR_FORMAT;
    }
    if (ob > oe)
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: tensor '%s': data_offsets begin %lld > end %lld", path, name,
                             (long long)ob, (long long)oe);
    if ((uint64_t)oe > (uint64_t)data_len)
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: tensor '%s': data_offsets end %lld beyond the data area of %zu "
                             "bytes", path, name, (long long)oe, data_len);
    char sb[160];
    shape_str(sb, sizeof sb, nd, t->shape);
    if (huge || (uint64_t)numel * esz != (uint64_t)(oe - ob))
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: tensor '%s': size mismatch: %s %s needs %s%lld bytes, "
                             "data_offsets span %lld", path, name, vox_dtype_name(t->dtype), sb,
                             huge ? "more than " : "",
                             huge ? (long long)data_len : (long long)((uint64_t)numel * esz),
                             (long long)(oe - ob));
    if (((uint64_t)data_start + (uint64_t)ob) % esz != 0)
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: tensor '%s': data at file offset %llu is not aligned to its "
                             "%zu-byte %s elements", path, name,
                             (unsigned long long)((uint64_t)data_start + (uint64_t)ob), esz,
                             vox_dtype_name(t->dtype));
    t->nbytes = (size_t)(oe - ob);
    *begin_out = ob;
    *end_out = oe;
    return VOX_OK;
}

typedef struct {
    int64_t begin, end;
    int idx;
} st_span;

static int cmp_span(const void *a, const void *b) {
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->idx - y->idx;
}

/* qsort has no context argument: sort indices of a name array by going through pointers. */
static int cmp_name_ptr(const void *a, const void *b) {
    const char *const *x = a, *const *y = b;
    int c = strcmp(*x, *y);
    if (c) return c;
    return (*x < *y) ? -1 : (*x > *y);
}

void vox_st_close(vox_st_file *f) {
    if (!f) return;
    if (f->map && f->map != MAP_FAILED) munmap(f->map, f->map_len);
    free(f->tensors);
    free(f->names);
    free(f->path);
    free(f);
}

static int st_parse(vox_st_file *f, vox_error *err) {
    const char *path = f->path;
    const unsigned char *base = f->map;
    size_t size = f->map_len;
    if (size < 8)
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: file is %zu bytes, shorter than the 8-byte header length",
                             path, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | base[i];
    if (hlen > (uint64_t)(size - 8))
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: header length %llu exceeds the %zu bytes after the length field",
                             path, (unsigned long long)hlen, size - 8);
    if (hlen < 2)
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: header length %llu: expected a JSON object", path,
                             (unsigned long long)hlen);
    const char *hdr = (const char *)base + 8;
    size_t data_start = 8 + (size_t)hlen;
    size_t data_len = size - data_start;

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    if (!root) {
        size_t at = end && end >= hdr ? (size_t)(end - hdr) : 0;
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: header is not valid JSON (error at header byte %zu of %llu)",
                             path, at, (unsigned long long)hlen);
    }
    /* Only whitespace (the upstream padding) or NULs may follow the JSON value. */
    for (const char *p = end; p < hdr + hlen; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != '\0') {
            cJSON_Delete(root);
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "%s: header has trailing garbage after the JSON at header byte %zu",
                                 path, (size_t)(p - hdr));
        }
    }
    if (!cJSON_IsObject(root)) {
        int rc = vox_set_error(err, VOX_ERR_FORMAT, "%s: header: expected a JSON object, found %s",
                               path, json_type_name(root));
        cJSON_Delete(root);
        return rc;
    }

    int n = 0;
    size_t names_len = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (!e->string) continue;
        if (strcmp(e->string, "__metadata__") == 0) continue;
        n++;
        names_len += strlen(e->string) + 1;
    }
    int rc = VOX_OK;
    st_span *spans = NULL;
    const char **sorted = NULL;
    f->tensors = vox_calloc((size_t)(n ? n : 1), sizeof *f->tensors, err);
    f->names = vox_malloc(names_len ? names_len : 1, err);
    spans = vox_calloc((size_t)(n ? n : 1), sizeof *spans, err);
    sorted = vox_calloc((size_t)(n ? n : 1), sizeof *sorted, err);
    if (!f->tensors || !f->names || !spans || !sorted) {
        rc = VOX_ERR_NOMEM;
        goto done;
    }
    int i = 0;
    size_t off = 0;
    cJSON_ArrayForEach(e, root) {
        if (!e->string || strcmp(e->string, "__metadata__") == 0) continue;
        vox_st_tensor *t = &f->tensors[i];
        size_t l = strlen(e->string) + 1;
        memcpy(f->names + off, e->string, l);
        t->name = f->names + off;
        off += l;
        int64_t b = 0, en = 0;
        rc = parse_entry(path, t->name, e, data_len, data_start, t, &b, &en, err);
        if (rc) goto done;
        t->data = base + data_start + b;
        spans[i].begin = b;
        spans[i].end = en;
        spans[i].idx = i;
        sorted[i] = t->name;
        i++;
    }
    f->n = n;

    /* Unique names. */
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_name_ptr);
    for (int k = 1; k < n; k++)
        if (strcmp(sorted[k - 1], sorted[k]) == 0) {
            rc = vox_set_error(err, VOX_ERR_FORMAT, "%s: tensor '%s': duplicate name in header",
                               path, sorted[k]);
            goto done;
        }

    /* No overlaps among non-empty tensors. */
    qsort(spans, (size_t)n, sizeof *spans, cmp_span);
    int prev = -1;
    for (int k = 0; k < n; k++) {
        if (spans[k].begin == spans[k].end) continue;
        if (prev >= 0 && spans[k].begin < spans[prev].end) {
            rc = vox_set_error(err, VOX_ERR_FORMAT,
                               "%s: tensor '%s': data [%lld, %lld) overlaps tensor '%s' [%lld, %lld)",
                               path, f->tensors[spans[k].idx].name, (long long)spans[k].begin,
                               (long long)spans[k].end, f->tensors[spans[prev].idx].name,
                               (long long)spans[prev].begin, (long long)spans[prev].end);
            goto done;
        }
        if (prev < 0 || spans[k].end > spans[prev].end) prev = k;
    }
done:
    free(spans);
    free(sorted);
    cJSON_Delete(root);
    return rc;
}

vox_st_file *vox_st_open(const char *path, vox_error *err) {
    if (!path) {
        vox_set_error(err, VOX_ERR_ARG, "vox_st_open: path is NULL");
        return NULL;
    }
    vox_st_file *f = vox_calloc(1, sizeof *f, err);
    if (!f) return NULL;
    size_t pl = strlen(path) + 1;
    f->path = vox_malloc(pl, err);
    if (!f->path) {
        free(f);
        return NULL;
    }
    memcpy(f->path, path, pl);

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        vox_set_error(err, VOX_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        vox_st_close(f);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        vox_set_error(err, VOX_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        vox_st_close(f);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        vox_set_error(err, VOX_ERR_IO, "%s: not a regular file", path);
        close(fd);
        vox_st_close(f);
        return NULL;
    }
    if (st.st_size == 0) {
        vox_set_error(err, VOX_ERR_FORMAT, "%s: file is empty (expected a safetensors header)",
                      path);
        close(fd);
        vox_st_close(f);
        return NULL;
    }
    f->map_len = (size_t)st.st_size;
    f->map = mmap(NULL, f->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    int mmap_errno = errno;
    close(fd);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        vox_set_error(err, VOX_ERR_IO, "%s: cannot mmap %zu bytes: %s", path, f->map_len,
                      strerror(mmap_errno));
        vox_st_close(f);
        return NULL;
    }
    if (st_parse(f, err) != VOX_OK) {
        vox_st_close(f);
        return NULL;
    }
    return f;
}

const char *vox_st_path(const vox_st_file *f) { return f ? f->path : NULL; }

int vox_st_count(const vox_st_file *f) { return f ? f->n : 0; }

const vox_st_tensor *vox_st_at(const vox_st_file *f, int i) {
    if (!f || i < 0 || i >= f->n) return NULL;
    return &f->tensors[i];
}

const vox_st_tensor *vox_st_find(const vox_st_file *f, const char *name) {
    if (!f || !name) return NULL;
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

static int is_float_dtype(vox_dtype d) {
    return d == VOX_DT_F32 || d == VOX_DT_BF16 || d == VOX_DT_F16;
}

int vox_st_get(const vox_st_file *f, const char *name, int dtype, int ndim, const int64_t *shape,
               const vox_st_tensor **out, vox_error *err) {
    if (out) *out = NULL;
    if (!f || !name || ndim < 0 || ndim > VOX_ST_MAX_DIMS || (ndim > 0 && !shape))
        return vox_set_error(err, VOX_ERR_ARG, "vox_st_get: invalid arguments");
    const vox_st_tensor *t = vox_st_find(f, name);
    if (!t)
        return vox_set_error(err, VOX_ERR_NOTFOUND, "%s: tensor '%s' not found", f->path, name);
    int ok = dtype < 0 ? is_float_dtype(t->dtype) : (int)t->dtype == dtype;
    if (ok && t->ndim != ndim) ok = 0;
    for (int i = 0; ok && i < ndim; i++)
        if (t->shape[i] != shape[i]) ok = 0;
    if (!ok) {
        char want[160], got[160];
        shape_str(want, sizeof want, ndim, shape);
        shape_str(got, sizeof got, t->ndim, t->shape);
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: tensor '%s': expected %s %s, found %s %s",
                             f->path, name,
                             dtype < 0 ? "F32/BF16/F16" : vox_dtype_name((vox_dtype)dtype), want,
                             vox_dtype_name(t->dtype), got);
    }
    if (out) *out = t;
    return VOX_OK;
}

vox_mat vox_st_mat(const vox_st_tensor *t) {
    vox_mat m;
    memset(&m, 0, sizeof m);
    if (!t) return m;
    m.data = t->data;
    m.dtype = t->dtype;
    if (t->ndim == 0) {
        m.rows = 1;
        m.cols = 1;
    } else if (t->ndim == 1) {
        m.rows = 1;
        m.cols = t->shape[0];
    } else {
        m.rows = t->shape[0];
        m.cols = t->shape[0] ? t->numel / t->shape[0] : 0;
    }
    return m;
}
