/* srv_util.c - base64 encoding (RFC 4648; decoding is vox_b64_decode) and a growing byte buffer
 * with JSON string escaping. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

size_t srv_b64_encode(const void *in, size_t n, char *out) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = in;
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = 0;
    return o;
}

static int buf_grow(srv_buf *b, size_t extra) {
    if (b->oom) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
        b->oom = 1;
        return -1;
    }
    b->p = np;
    b->cap = cap;
    return 0;
}

void srv_buf_add(srv_buf *b, const void *p, size_t n) {
    if (buf_grow(b, n)) return;
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
}

void srv_buf_printf(srv_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        srv_buf_add(b, tmp, (size_t)n);
        return;
    }
    if (buf_grow(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* JSON string: quotes, backslash and control bytes escaped; other bytes copied (the text is
 * UTF-8 from the tokenizer, whose stream decoder already replaced invalid sequences). */
void srv_buf_json_str(srv_buf *b, const char *s, size_t n) {
    if (buf_grow(b, n + 2)) return;
    b->p[b->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"')
            SRV_BUF_LIT(b, "\\\"");
        else if (c == '\\')
            SRV_BUF_LIT(b, "\\\\");
        else if (c == '\n')
            SRV_BUF_LIT(b, "\\n");
        else if (c == '\r')
            SRV_BUF_LIT(b, "\\r");
        else if (c == '\t')
            SRV_BUF_LIT(b, "\\t");
        else if (c < 0x20 || c == 0x7f)
            srv_buf_printf(b, "\\u%04x", c);
        else
            srv_buf_add(b, &s[i], 1);
    }
    SRV_BUF_LIT(b, "\"");
}

void srv_buf_free(srv_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}
