/* params.c - params.json with dotted key paths and typed getters (see vox_params.h). */
#define _POSIX_C_SOURCE 200809L
#include "vox_params.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vox_params {
    char *name;  /* path or the name given to vox_params_parse (used in messages) */
    cJSON *root; /* the parsed document, an object */
};

/* Integers above 2^53 are not exact in a double; refuse them rather than round. */
#define PARAMS_MAX_EXACT 9007199254740992.0

/* Longest dotted key accepted. */
#define PARAMS_KEY_MAX 256

static const char *type_name(const cJSON *v) {
    if (!v) return "nothing";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        return floor(d) == d ? "an integer" : "a non-integral number";
    }
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "an invalid value";
}

enum { LK_FOUND, LK_ABSENT, LK_BADPATH, LK_BADKEY };

/* Walk a dotted path. LK_FOUND sets *out (which may be a JSON null); LK_BADPATH means a prefix
 * exists but is not an object (its length in *bad_len). */
static int lookup(const vox_params *p, const char *key, const cJSON **out, size_t *bad_len) {
    *out = NULL;
    size_t klen = key ? strlen(key) : 0;
    if (!p || !key || klen == 0 || klen >= PARAMS_KEY_MAX) return LK_BADKEY;
    char buf[PARAMS_KEY_MAX];
    memcpy(buf, key, klen + 1);
    const cJSON *cur = p->root;
    char *seg = buf;
    for (;;) {
        char *dot = strchr(seg, '.');
        if (dot) *dot = '\0';
        if (*seg == '\0') return LK_BADKEY;
        if (!cJSON_IsObject(cur)) {
            *bad_len = (size_t)(seg - buf) - 1;
            return LK_BADPATH;
        }
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(cur, seg);
        if (!next) return LK_ABSENT;
        cur = next;
        if (!dot) break;
        seg = dot + 1;
    }
    *out = cur;
    return LK_FOUND;
}

/* Resolve `key` for a getter. Returns VOX_OK with *out set, VOX_OK with *out NULL when absent or
 * null and `optional`, else an error. */
static int resolve(const vox_params *p, const char *key, int optional, const cJSON **out,
                   vox_error *err) {
    size_t bad = 0;
    int r = lookup(p, key, out, &bad);
    const char *name = p ? p->name : "params";
    if (r == LK_BADKEY)
        return vox_set_error(err, VOX_ERR_ARG, "%s: invalid key '%s'", name, key ? key : "(null)");
    if (r == LK_BADPATH) {
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: key '%s': '%.*s' is not an object", name,
                             key, (int)bad, key);
    }
    if (r == LK_ABSENT || cJSON_IsNull(*out)) {
        *out = NULL;
        if (optional) return VOX_OK;
        return vox_set_error(err, VOX_ERR_NOTFOUND, "%s: key '%s' is missing", name, key);
    }
    return VOX_OK;
}

static vox_params *params_new(cJSON *root, const char *name, vox_error *err) {
    vox_params *p = vox_calloc(1, sizeof *p, err);
    if (!p) {
        cJSON_Delete(root);
        return NULL;
    }
    size_t l = strlen(name) + 1;
    p->name = vox_malloc(l, err);
    if (!p->name) {
        cJSON_Delete(root);
        free(p);
        return NULL;
    }
    memcpy(p->name, name, l);
    p->root = root;
    return p;
}

vox_params *vox_params_parse(const char *json, const char *name, vox_error *err) {
    if (!name) name = "params.json";
    if (!json) {
        vox_set_error(err, VOX_ERR_ARG, "%s: no JSON text", name);
        return NULL;
    }
    const char *end = NULL;
    size_t len = strlen(json);
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        /* Report the line of the error. */
        size_t at = end && end >= json ? (size_t)(end - json) : 0;
        int line = 1;
        for (size_t i = 0; i < at && i < len; i++) line += json[i] == '\n';
        vox_set_error(err, VOX_ERR_FORMAT, "%s: not valid JSON (error near line %d, byte %zu)",
                      name, line, at);
        return NULL;
    }
    for (const char *q = end; *q; q++) {
        if (!isspace((unsigned char)*q)) {
            vox_set_error(err, VOX_ERR_FORMAT, "%s: trailing text after the JSON at byte %zu",
                          name, (size_t)(q - json));
            cJSON_Delete(root);
            return NULL;
        }
    }
    if (!cJSON_IsObject(root)) {
        vox_set_error(err, VOX_ERR_FORMAT, "%s: expected a JSON object at the top, found %s",
                      name, type_name(root));
        cJSON_Delete(root);
        return NULL;
    }
    return params_new(root, name, err);
}

vox_params *vox_params_load(const char *path, vox_error *err) {
    if (!path) {
        vox_set_error(err, VOX_ERR_ARG, "vox_params_load: path is NULL");
        return NULL;
    }
    size_t len = 0;
    char *txt = vox_read_file(path, &len, err);
    if (!txt) return NULL;
    if (strlen(txt) != len) {
        vox_set_error(err, VOX_ERR_FORMAT, "%s: contains a NUL byte (not a JSON text file)", path);
        free(txt);
        return NULL;
    }
    vox_params *p = vox_params_parse(txt, path, err);
    free(txt);
    return p;
}

void vox_params_free(vox_params *p) {
    if (!p) return;
    cJSON_Delete(p->root);
    free(p->name);
    free(p);
}

const char *vox_params_path(const vox_params *p) { return p ? p->name : NULL; }

int vox_params_has(const vox_params *p, const char *key) {
    const cJSON *v;
    size_t bad;
    return lookup(p, key, &v, &bad) == LK_FOUND && !cJSON_IsNull(v);
}

static int mistyped(const vox_params *p, const char *key, const char *want, const cJSON *v,
                    vox_error *err) {
    if (cJSON_IsNumber(v) && strcmp(want, "an integer") == 0) {
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: key '%s': expected an integer, found %s (%g)",
                             p->name, key, type_name(v), v->valuedouble);
    }
    return vox_set_error(err, VOX_ERR_FORMAT, "%s: key '%s': expected %s, found %s", p->name,
                         key, want, type_name(v));
}

static int get_int(const vox_params *p, const char *key, int optional, int64_t def, int64_t *out,
                   vox_error *err) {
    const cJSON *v;
    int rc = resolve(p, key, optional, &v, err);
    if (rc) return rc;
    if (!v) {
        if (out) *out = def;
        return VOX_OK;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : 0.5;
    if (!cJSON_IsNumber(v) || floor(d) != d) return mistyped(p, key, "an integer", v, err);
    if (fabs(d) > PARAMS_MAX_EXACT)
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: key '%s': expected an integer of magnitude <= 2^53, found %g",
                             p->name, key, d);
    if (out) *out = (int64_t)d;
    return VOX_OK;
}

static int get_float(const vox_params *p, const char *key, int optional, double def, double *out,
                     vox_error *err) {
    const cJSON *v;
    int rc = resolve(p, key, optional, &v, err);
    if (rc) return rc;
    if (!v) {
        if (out) *out = def;
        return VOX_OK;
    }
    if (!cJSON_IsNumber(v)) return mistyped(p, key, "a number", v, err);
    if (out) *out = v->valuedouble;
    return VOX_OK;
}

static int get_bool(const vox_params *p, const char *key, int optional, int def, int *out,
                    vox_error *err) {
    const cJSON *v;
    int rc = resolve(p, key, optional, &v, err);
    if (rc) return rc;
    if (!v) {
        if (out) *out = def;
        return VOX_OK;
    }
    if (!cJSON_IsBool(v)) return mistyped(p, key, "a boolean", v, err);
    if (out) *out = cJSON_IsTrue(v) ? 1 : 0;
    return VOX_OK;
}

int vox_params_int(const vox_params *p, const char *key, int64_t *out, vox_error *err) {
    return get_int(p, key, 0, 0, out, err);
}

int vox_params_float(const vox_params *p, const char *key, double *out, vox_error *err) {
    return get_float(p, key, 0, 0.0, out, err);
}

int vox_params_bool(const vox_params *p, const char *key, int *out, vox_error *err) {
    return get_bool(p, key, 0, 0, out, err);
}

int vox_params_str(const vox_params *p, const char *key, const char **out, vox_error *err) {
    const cJSON *v;
    int rc = resolve(p, key, 0, &v, err);
    if (rc) return rc;
    if (!cJSON_IsString(v)) return mistyped(p, key, "a string", v, err);
    if (out) *out = v->valuestring;
    return VOX_OK;
}

int vox_params_int_or(const vox_params *p, const char *key, int64_t def, int64_t *out,
                      vox_error *err) {
    return get_int(p, key, 1, def, out, err);
}

int vox_params_float_or(const vox_params *p, const char *key, double def, double *out,
                        vox_error *err) {
    return get_float(p, key, 1, def, out, err);
}

int vox_params_bool_or(const vox_params *p, const char *key, int def, int *out, vox_error *err) {
    return get_bool(p, key, 1, def, out, err);
}

/* Parse "2, 2,-3" into out[]. */
static int parse_int_csv(const vox_params *p, const char *key, const char *s, int64_t *out,
                         int cap, int *n, vox_error *err) {
    int count = 0;
    const char *q = s;
    while (isspace((unsigned char)*q)) q++;
    if (*q == '\0') {
        *n = 0;
        return VOX_OK;
    }
    for (;;) {
        while (isspace((unsigned char)*q)) q++;
        char *endp = NULL;
        errno = 0;
        long long v = strtoll(q, &endp, 10);
        if (endp == q || errno == ERANGE)
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "%s: key '%s': expected comma-separated integers, found \"%.60s\"",
                                 p->name, key, s);
        q = endp;
        while (isspace((unsigned char)*q)) q++;
        if (count >= cap)
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "%s: key '%s': expected at most %d integers, found more in \"%.60s\"",
                                 p->name, key, cap, s);
        if (out) out[count] = (int64_t)v;
        count++;
        if (*q == '\0') break;
        if (*q != ',')
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "%s: key '%s': expected comma-separated integers, found \"%.60s\"",
                                 p->name, key, s);
        q++;
    }
    *n = count;
    return VOX_OK;
}

int vox_params_int_list(const vox_params *p, const char *key, int64_t *out, int cap, int *n,
                        vox_error *err) {
    int dummy;
    if (!n) n = &dummy;
    *n = 0;
    if (cap < 0) return vox_set_error(err, VOX_ERR_ARG, "vox_params_int_list: negative cap");
    const cJSON *v;
    int rc = resolve(p, key, 0, &v, err);
    if (rc) return rc;
    if (cJSON_IsString(v)) return parse_int_csv(p, key, v->valuestring, out, cap, n, err);
    if (!cJSON_IsArray(v))
        return mistyped(p, key, "an integer list (array or comma-separated string)", v, err);
    int count = cJSON_GetArraySize(v);
    if (count > cap)
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: key '%s': expected at most %d integers, found %d", p->name, key,
                             cap, count);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        double d = cJSON_IsNumber(e) ? e->valuedouble : 0.5;
        if (!cJSON_IsNumber(e) || floor(d) != d || fabs(d) > PARAMS_MAX_EXACT)
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "%s: key '%s': element %d: expected an integer, found %s",
                                 p->name, key, i, type_name(e));
        if (out) out[i] = (int64_t)d;
        i++;
    }
    *n = count;
    return VOX_OK;
}
