/* multipart.c - strict multipart/form-data parser (multipart.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "multipart.h"

/* RFC 7230 tchar */
static int is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* RFC 2046 bchars (space allowed, not last) */
static int is_bchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 1;
    return c && strchr("'()+_,-./:=? ", c) != NULL;
}

static int is_ws(unsigned char c) {
    return c == ' ' || c == '\t';
}

static char *dup_n(const char *s, size_t n) {
    char *r = malloc(n + 1);
    if (!r) return NULL;
    memcpy(r, s, n);
    r[n] = 0;
    return r;
}

/* A header parameter list cursor over s[0, n). */
typedef struct {
    const char *s;
    size_t n, i;
} cursor;

static void skip_ws(cursor *c) {
    while (c->i < c->n && is_ws((unsigned char)c->s[c->i]))
        c->i++;
}

static size_t token_len(const cursor *c) {
    size_t k = c->i;
    while (k < c->n && is_tchar((unsigned char)c->s[k]))
        k++;
    return k - c->i;
}

/* token or quoted-string at the cursor -> malloc'ed value (escapes undone). 0 ok, 1 syntax
 * error (*why set), -1 out of memory. */
static int read_value(cursor *c, char **out, const char **why) {
    *out = NULL;
    if (c->i < c->n && c->s[c->i] == '"') {
        char *v = malloc(c->n - c->i + 1);
        if (!v) return -1;
        size_t o = 0;
        c->i++;
        for (;;) {
            if (c->i >= c->n) {
                free(v);
                *why = "unterminated quoted string";
                return 1;
            }
            unsigned char ch = (unsigned char)c->s[c->i++];
            if (ch == '"') break;
            if (ch == '\\') {
                if (c->i >= c->n) continue; /* reported as unterminated next round */
                ch = (unsigned char)c->s[c->i++];
            }
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
                free(v);
                *why = "control character in quoted string";
                return 1;
            }
            v[o++] = (char)ch;
        }
        v[o] = 0;
        *out = v;
        return 0;
    }
    size_t k = token_len(c);
    if (!k) {
        *why = "parameter value is neither a token nor a quoted string";
        return 1;
    }
    *out = dup_n(c->s + c->i, k);
    c->i += k;
    return *out ? 0 : -1;
}

/* Next "; name=value" parameter. Returns 1 with name/value set, 0 at the end, -1 out of memory,
 * -2 syntax error (*why). name is written lowercase into pname[cap]. */
static int next_param(cursor *c, char *pname, size_t cap, char **value, const char **why) {
    *value = NULL;
    skip_ws(c);
    if (c->i >= c->n) return 0;
    if (c->s[c->i] != ';') {
        *why = "expected ';' between parameters";
        return -2;
    }
    c->i++;
    skip_ws(c);
    if (c->i >= c->n) return 0; /* a trailing ';' is tolerated (some clients emit it) */
    size_t k = token_len(c);
    if (!k) {
        *why = "empty parameter name";
        return -2;
    }
    if (k >= cap) {
        *why = "parameter name too long";
        return -2;
    }
    for (size_t j = 0; j < k; j++) {
        char ch = c->s[c->i + j];
        pname[j] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    pname[k] = 0;
    c->i += k;
    skip_ws(c);
    if (c->i >= c->n || c->s[c->i] != '=') {
        *why = "parameter without '='";
        return -2;
    }
    c->i++;
    skip_ws(c);
    int r = read_value(c, value, why);
    return r == 0 ? 1 : r == 1 ? -2 : -1;
}

int srv_mp_boundary(const char *ct, char out[SRV_MP_BOUNDARY_MAX + 1], vox_error *err) {
    out[0] = 0;
    if (!ct)
        return vox_set_error(err, VOX_ERR_ARG, "no Content-Type (expected multipart/form-data)");
    cursor c = {ct, strlen(ct), 0};
    skip_ws(&c);
    static const char mt[] = "multipart/form-data";
    if (c.n - c.i < sizeof mt - 1 || strncasecmp(ct + c.i, mt, sizeof mt - 1) ||
        (c.n - c.i > sizeof mt - 1 && !is_ws((unsigned char)ct[c.i + sizeof mt - 1]) &&
         ct[c.i + sizeof mt - 1] != ';'))
        return vox_set_error(err, VOX_ERR_ARG,
                             "Content-Type is '%.80s', expected multipart/form-data", ct);
    c.i += sizeof mt - 1;
    int found = 0;
    for (;;) {
        char pn[64], *v = NULL;
        const char *why = NULL;
        int r = next_param(&c, pn, sizeof pn, &v, &why);
        if (r == 0) break;
        if (r == -1) return vox_set_error(err, VOX_ERR_NOMEM, "out of memory");
        if (r == -2) return vox_set_error(err, VOX_ERR_ARG, "Content-Type '%.80s': %s", ct, why);
        if (!strcmp(pn, "boundary")) {
            size_t bl = strlen(v);
            int bad = found || bl == 0 || bl > SRV_MP_BOUNDARY_MAX || v[bl - 1] == ' ';
            for (size_t j = 0; j < bl && !bad; j++)
                bad = !is_bchar((unsigned char)v[j]);
            if (bad) {
                int dup = found;
                free(v);
                return vox_set_error(err, VOX_ERR_ARG,
                                     dup ? "Content-Type has two boundary parameters"
                                         : "multipart boundary must be 1..70 characters of "
                                           "[0-9A-Za-z'()+_,-./:=? ] not ending in a space");
            }
            memcpy(out, v, bl + 1);
            found = 1;
        }
        free(v);
    }
    if (!found)
        return vox_set_error(err, VOX_ERR_ARG, "Content-Type multipart/form-data has no boundary");
    return VOX_OK;
}

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* RFC 5987 ext-value "UTF-8'lang'pct-encoded" in place; 0 ok, 1 malformed/unsupported. */
static int decode_ext_value(char *v) {
    char *q1 = strchr(v, '\'');
    char *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
    if (!q2 || (size_t)(q1 - v) != 5 || strncasecmp(v, "utf-8", 5)) return 1;
    char *o = v;
    for (const char *p = q2 + 1; *p; p++) {
        if (*p == '%') {
            int a = hexval((unsigned char)p[1]), b = a < 0 ? -1 : hexval((unsigned char)p[2]);
            if (b < 0) return 1;
            int ch = a * 16 + b;
            if (ch == 0) return 1;
            *o++ = (char)ch;
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
    return 0;
}

void srv_mp_free(srv_mp_form *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->parts[i].name);
        free(f->parts[i].filename);
        free(f->parts[i].content_type);
    }
    free(f->parts);
    f->parts = NULL;
    f->n = 0;
}

const srv_mp_part *srv_mp_find(const srv_mp_form *f, const char *name) {
    for (size_t i = 0; f && i < f->n; i++)
        if (!strcmp(f->parts[i].name, name)) return &f->parts[i];
    return NULL;
}

/* First occurrence of needle[nl] in h[hl] at or after `from`, or (size_t)-1. */
static size_t find(const unsigned char *h, size_t hl, size_t from, const unsigned char *needle,
                   size_t nl) {
    if (from > hl || hl - from < nl) return (size_t)-1;
    const void *p = memmem(h + from, hl - from, needle, nl);
    return p ? (size_t)((const unsigned char *)p - h) : (size_t)-1;
}

/* Parse the Content-Disposition value v[n] of part `pi` into P. */
static int parse_disposition(const char *v, size_t n, size_t pi, srv_mp_part *P, vox_error *err) {
    cursor c = {v, n, 0};
    size_t k = token_len(&c);
    if (k != 9 || strncasecmp(v, "form-data", 9))
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "multipart part %zu: Content-Disposition is '%.*s', expected "
                             "form-data",
                             pi, (int)(n > 60 ? 60 : n), v);
    c.i = k;
    char *fname_ext = NULL;
    int rc = VOX_OK;
    for (;;) {
        char pn[64], *val = NULL;
        const char *why = NULL;
        int r = next_param(&c, pn, sizeof pn, &val, &why);
        if (r == 0) break;
        if (r == -1) {
            rc = vox_set_error(err, VOX_ERR_NOMEM, "out of memory");
            break;
        }
        if (r == -2) {
            rc = vox_set_error(err, VOX_ERR_FORMAT, "multipart part %zu: Content-Disposition: %s",
                               pi, why);
            break;
        }
        char **slot = !strcmp(pn, "name")        ? &P->name
                      : !strcmp(pn, "filename")  ? &P->filename
                      : !strcmp(pn, "filename*") ? &fname_ext
                                                 : NULL;
        if (!slot) {
            free(val);
            continue;
        }
        if (*slot) {
            free(val);
            rc = vox_set_error(err, VOX_ERR_FORMAT,
                               "multipart part %zu: Content-Disposition has two '%s' parameters",
                               pi, pn);
            break;
        }
        *slot = val;
    }
    if (!rc && fname_ext) {
        if (decode_ext_value(fname_ext))
            rc = vox_set_error(err, VOX_ERR_FORMAT,
                               "multipart part %zu: filename* is not UTF-8''percent-encoded", pi);
        else {
            free(P->filename);
            P->filename = fname_ext;
            fname_ext = NULL;
        }
    }
    free(fname_ext);
    if (!rc && !P->name)
        rc = vox_set_error(err, VOX_ERR_FORMAT,
                           "multipart part %zu: Content-Disposition has no name parameter", pi);
    return rc;
}

/* Headers of part `pi` in h[hl] (lines separated by CRLF, without the final empty line). */
static int parse_headers(const unsigned char *h, size_t hl, size_t pi, srv_mp_part *P,
                         vox_error *err) {
    /* line structure first, so that a folded or broken line is named as such rather than by
     * its effect on the header before it */
    for (size_t i = 0; i < hl;) {
        size_t e = find(h, hl, i, (const unsigned char *)"\r\n", 2);
        if (e == (size_t)-1) e = hl;
        const char *line = (const char *)h + i;
        size_t ll = e - i;
        if (memchr(line, '\n', ll) || memchr(line, '\r', ll))
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "multipart part %zu: header line with a bare CR or LF (lines "
                                 "must end in CRLF)",
                                 pi);
        if (memchr(line, 0, ll))
            return vox_set_error(err, VOX_ERR_FORMAT, "multipart part %zu: NUL byte in a header",
                                 pi);
        if (ll && is_ws((unsigned char)line[0]))
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "multipart part %zu: folded header line (obsolete, not "
                                 "accepted)",
                                 pi);
        i = e + 2;
    }
    int have_cd = 0;
    for (size_t i = 0; i < hl;) {
        size_t e = find(h, hl, i, (const unsigned char *)"\r\n", 2);
        if (e == (size_t)-1) e = hl;
        const char *line = (const char *)h + i;
        size_t ll = e - i;
        const char *colon = memchr(line, ':', ll);
        size_t nl = colon ? (size_t)(colon - line) : 0;
        int ok = colon && nl > 0;
        for (size_t j = 0; j < nl && ok; j++)
            ok = is_tchar((unsigned char)line[j]);
        if (!ok)
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "multipart part %zu: malformed header line '%.*s'", pi,
                                 (int)(ll > 60 ? 60 : ll), line);
        const char *v = colon + 1;
        size_t vl = ll - nl - 1;
        while (vl && is_ws((unsigned char)*v))
            v++, vl--;
        while (vl && is_ws((unsigned char)v[vl - 1]))
            vl--;
        if (nl == 19 && !strncasecmp(line, "Content-Disposition", 19)) {
            if (have_cd)
                return vox_set_error(err, VOX_ERR_FORMAT,
                                     "multipart part %zu: two Content-Disposition headers", pi);
            have_cd = 1;
            int rc = parse_disposition(v, vl, pi, P, err);
            if (rc) return rc;
        } else if (nl == 12 && !strncasecmp(line, "Content-Type", 12)) {
            if (P->content_type)
                return vox_set_error(err, VOX_ERR_FORMAT,
                                     "multipart part %zu: two Content-Type headers", pi);
            P->content_type = dup_n(v, vl);
            if (!P->content_type) return vox_set_error(err, VOX_ERR_NOMEM, "out of memory");
        } else if (nl == 25 && !strncasecmp(line, "Content-Transfer-Encoding", 25)) {
            if (!((vl == 4 && !strncasecmp(v, "7bit", 4)) ||
                  (vl == 4 && !strncasecmp(v, "8bit", 4)) ||
                  (vl == 6 && !strncasecmp(v, "binary", 6))))
                return vox_set_error(err, VOX_ERR_FORMAT,
                                     "multipart part %zu: Content-Transfer-Encoding '%.*s' is not "
                                     "supported (send binary)",
                                     pi, (int)(vl > 30 ? 30 : vl), v);
        }
        i = e + 2;
    }
    if (!have_cd)
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "multipart part %zu: no Content-Disposition header", pi);
    return VOX_OK;
}

int srv_mp_parse(const void *body, size_t len, const char *boundary, const srv_mp_limits *lim,
                 srv_mp_form *form, vox_error *err) {
    form->parts = NULL;
    form->n = 0;
    size_t bl = boundary ? strlen(boundary) : 0;
    if (!bl || bl > SRV_MP_BOUNDARY_MAX)
        return vox_set_error(err, VOX_ERR_ARG, "multipart: bad boundary");
    size_t max_parts = lim && lim->max_parts ? lim->max_parts : 64;
    size_t max_hdr = lim && lim->max_header_bytes ? lim->max_header_bytes : 8192;
    const unsigned char *b = body;
    if (!b && len) return vox_set_error(err, VOX_ERR_ARG, "multipart: NULL body");
    /* delim = CRLF "--" boundary; the first one may lack the CRLF at the very start */
    unsigned char delim[SRV_MP_BOUNDARY_MAX + 4];
    delim[0] = '\r', delim[1] = '\n', delim[2] = '-', delim[3] = '-';
    memcpy(delim + 4, boundary, bl);
    size_t dl = bl + 4;
    size_t pos; /* just after a delimiter */
    if (len >= dl - 2 && !memcmp(b, delim + 2, dl - 2))
        pos = dl - 2;
    else {
        size_t at = find(b, len, 0, delim, dl);
        if (at == (size_t)-1)
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "multipart body (%zu bytes) does not contain the boundary "
                                 "'--%s'",
                                 len, boundary);
        pos = at + dl;
    }
    size_t cap = 0;
    int rc = VOX_OK;
    for (size_t pi = 1;; pi++) {
        /* after a delimiter: "--" closes; else padding CRLF starts a part */
        if (len - pos >= 2 && b[pos] == '-' && b[pos + 1] == '-') {
            if (form->n == 0)
                rc = vox_set_error(err, VOX_ERR_FORMAT, "multipart body has no parts");
            break; /* the epilogue is ignored */
        }
        while (pos < len && is_ws(b[pos]))
            pos++;
        if (len - pos < 2 || b[pos] != '\r' || b[pos + 1] != '\n') {
            rc = vox_set_error(err, VOX_ERR_FORMAT,
                               len - pos < 2
                                   ? "multipart body ends after a boundary without the closing "
                                     "'--%s--' (truncated upload?)"
                                   : "multipart boundary '--%s' not followed by CRLF or '--' "
                                     "(boundary text inside a part, or bare LF line ends)",
                               boundary);
            break;
        }
        pos += 2;
        if (pi > max_parts) {
            rc = vox_set_error(err, VOX_ERR_FORMAT, "multipart body has more than %zu parts",
                               max_parts);
            break;
        }
        /* header block ends at the first CRLF CRLF, or at once with an empty line */
        size_t hend, dstart;
        if (len - pos >= 2 && b[pos] == '\r' && b[pos + 1] == '\n') {
            hend = pos;
            dstart = pos + 2;
        } else {
            size_t lim_end = len - pos > max_hdr + 4 ? pos + max_hdr + 4 : len;
            size_t e = find(b, lim_end, pos, (const unsigned char *)"\r\n\r\n", 4);
            if (e == (size_t)-1) {
                rc = vox_set_error(err, VOX_ERR_FORMAT,
                                   lim_end < len
                                       ? "multipart part %zu: headers longer than the limit"
                                       : "multipart part %zu: headers not terminated by an empty "
                                         "line (CRLF CRLF)",
                                   pi);
                break;
            }
            hend = e;
            dstart = e + 4;
        }
        if (hend - pos + 4 > max_hdr) {
            rc = vox_set_error(err, VOX_ERR_FORMAT,
                               "multipart part %zu: headers of %zu bytes exceed the limit %zu", pi,
                               hend - pos + 4, max_hdr);
            break;
        }
        if (form->n == cap) {
            size_t nc = cap ? cap * 2 : 4;
            srv_mp_part *np = realloc(form->parts, nc * sizeof *np);
            if (!np) {
                rc = vox_set_error(err, VOX_ERR_NOMEM, "out of memory");
                break;
            }
            form->parts = np;
            cap = nc;
        }
        srv_mp_part *P = &form->parts[form->n++];
        memset(P, 0, sizeof *P);
        rc = parse_headers(b + pos, hend - pos, pi, P, err);
        if (rc) break;
        size_t at = find(b, len, dstart, delim, dl);
        if (at == (size_t)-1) {
            rc = vox_set_error(err, VOX_ERR_FORMAT,
                               "multipart part %zu ('%.40s'): body ends inside the part, without "
                               "the closing '--%s--' (truncated upload?)",
                               pi, P->name, boundary);
            break;
        }
        P->data = b + dstart;
        P->len = at - dstart;
        pos = at + dl;
    }
    if (rc) srv_mp_free(form);
    return rc;
}
