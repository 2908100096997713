/* common.c - error reporting and small utilities (see vox_common.h). */
#define _POSIX_C_SOURCE 200809L
#include "vox_common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int vox_set_error(vox_error *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

const char *vox_error_name(int code) {
    switch (code) {
    case VOX_OK: return "ok";
    case VOX_ERR_IO: return "io";
    case VOX_ERR_FORMAT: return "format";
    case VOX_ERR_NOMEM: return "out of memory";
    case VOX_ERR_ARG: return "bad argument";
    case VOX_ERR_DEVICE: return "device";
    case VOX_ERR_UNSUPPORTED: return "unsupported";
    case VOX_ERR_NOTFOUND: return "not found";
    default: return "unknown";
    }
}

double vox_time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void *vox_malloc(size_t n, vox_error *err) {
    void *p = malloc(n ? n : 1);
    if (!p) vox_set_error(err, VOX_ERR_NOMEM, "out of memory allocating %zu bytes", n);
    return p;
}

void *vox_calloc(size_t count, size_t size, vox_error *err) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) vox_set_error(err, VOX_ERR_NOMEM, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

char *vox_read_file(const char *path, size_t *out_len, vox_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        vox_set_error(err, VOX_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 65536 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 131072;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                fclose(f);
                vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory reading file", path);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        vox_set_error(err, VOX_ERR_IO, "%s: read error", path);
        return NULL;
    }
    buf[len] = '\0';
    if (out_len) *out_len = len;
    return buf;
}

/* Strict UTF-8 validation (what a Python str can hold, minus surrogates). Returns the offset of
 * the first invalid byte, or n if valid. */
size_t vox_utf8_check(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return i;
        }
        if (i + len > n || s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) return i;
        i += len;
    }
    return n;
}

int vox_mkdir_p(const char *dir, vox_error *err) {
    size_t l = strlen(dir);
    if (l == 0 || l >= 4096) return vox_set_error(err, VOX_ERR_ARG, "bad output directory '%s'", dir);
    char buf[4096];
    memcpy(buf, dir, l + 1);
    for (size_t i = 1; i <= l; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return vox_set_error(err, VOX_ERR_IO, "%s: cannot create directory: %s", buf,
                                     strerror(errno));
            buf[i] = c;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return vox_set_error(err, VOX_ERR_IO, "%s: not a directory", dir);
    return VOX_OK;
}

static int b64_val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

long vox_b64_decode(const char *s, size_t n, unsigned char *out) {
    if (n % 4 != 0) return -1;
    long o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            v[k] = s[i + k] == '=' ? -2 : b64_val((unsigned char)s[i + k]);
            if (v[k] == -1) return -1;
        }
        if (v[0] < 0 || v[1] < 0) return -1;
        if (v[2] == -2 && v[3] != -2) return -1;
        if ((v[2] == -2 || v[3] == -2) && i + 4 != n) return -1;
        uint32_t x = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) |
                     ((uint32_t)(v[2] < 0 ? 0 : v[2]) << 6) | (uint32_t)(v[3] < 0 ? 0 : v[3]);
        out[o++] = (unsigned char)(x >> 16);
        if (v[2] >= 0) out[o++] = (unsigned char)(x >> 8);
        if (v[3] >= 0) out[o++] = (unsigned char)x;
    }
    return o;
}
