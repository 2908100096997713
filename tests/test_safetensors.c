/* test_safetensors.c - the safetensors reader against files made by the writer (round trip) and
 * by hand (one corrupt variant per validation rule, each asserting its specific message). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vox_safetensors.h"
#include "vox_st_write.h"
#include "vox_test.h"

static char g_dir[64];

static void path_of(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", g_dir, name);
}

/* Write a raw file with a correct length field for `hdr` and `data_len` zero data bytes; open
 * it, expect failure whose message contains the path and every given substring. */
static void expect_bad_hdr(vox_test_state *ts, const char *name, const char *hdr, size_t data_len,
                           const char *want1, const char *want2) {
    char path[256];
    path_of(path, sizeof path, name);
    unsigned char *data = calloc(1, data_len ? data_len : 1);
    /* pad with spaces as upstream, so only the intended rule is violated */
    size_t hl = strlen(hdr);
    char *padded = malloc(hl + 8);
    memcpy(padded, hdr, hl);
    while (hl % 8) padded[hl++] = ' ';
    vox_error err = {0};
    int rc = vox_st_write_raw(path, hl, padded, hl, data, data_len, &err);
    free(padded);
    free(data);
    VOX_CHECK(ts, rc == VOX_OK, "%s: write_raw: %s", name, err.msg);
    memset(&err, 0, sizeof err);
    vox_st_file *f = vox_st_open(path, &err);
    VOX_CHECK(ts, f == NULL, "%s: corrupt file was accepted", name);
    vox_st_close(f);
    VOX_CHECK(ts, err.code == VOX_ERR_FORMAT, "%s: code %d, want format (%s)", name, err.code,
              err.msg);
    VOX_CHECK(ts, strstr(err.msg, path) != NULL, "%s: message lacks the path: %s", name, err.msg);
    VOX_CHECK(ts, strstr(err.msg, want1) != NULL, "%s: message lacks '%s': %s", name, want1,
              err.msg);
    if (want2)
        VOX_CHECK(ts, strstr(err.msg, want2) != NULL, "%s: message lacks '%s': %s", name, want2,
                  err.msg);
    VOX_CHECK(ts, strchr(err.msg, '\n') == NULL, "%s: message is not one line", name);
}

static void test_round_trip(vox_test_state *ts) {
    vox_error err = {0};
    vox_stw *w = vox_stw_new(&err);
    float f32[6] = {1.f, -2.f, 3.5f, 0.f, 1e-3f, -7.25f};
    uint16_t bf16[4] = {0x3f80, 0xbf80, 0x4000, 0x0000};
    int32_t i32 = -42;
    uint8_t u8[5] = {1, 2, 3, 4, 5};
    int64_t i64[2] = {INT64_C(1) << 40, -3};
    int64_t s_f32[2] = {2, 3}, s_bf16[1] = {4}, s_u8[1] = {5}, s_i64[1] = {2}, s_f16[2] = {0, 3};
    int64_t s_conv[3] = {2, 3, 2};
    VOX_CHECK(ts, vox_stw_add(w, "b.f32", VOX_DT_F32, 2, s_f32, f32, &err) == 0, "%s", err.msg);
    VOX_CHECK(ts, vox_stw_add(w, "u8", VOX_DT_U8, 1, s_u8, u8, &err) == 0, "%s", err.msg);
    VOX_CHECK(ts, vox_stw_add(w, "a.bf16", VOX_DT_BF16, 1, s_bf16, bf16, &err) == 0, "%s", err.msg);
    VOX_CHECK(ts, vox_stw_add(w, "scalar", VOX_DT_I32, 0, NULL, &i32, &err) == 0, "%s", err.msg);
    VOX_CHECK(ts, vox_stw_add(w, "i64", VOX_DT_I64, 1, s_i64, i64, &err) == 0, "%s", err.msg);
    VOX_CHECK(ts, vox_stw_add(w, "empty", VOX_DT_F16, 2, s_f16, NULL, &err) == 0, "%s", err.msg);
    VOX_CHECK(ts, vox_stw_add(w, "conv", VOX_DT_F32, 3, s_conv, NULL, &err) == 0, "%s", err.msg);
    VOX_CHECK(ts, vox_stw_add(w, "u8", VOX_DT_U8, 1, s_u8, u8, &err) == VOX_ERR_ARG,
              "writer accepted a duplicate name");
    VOX_CHECK(ts, vox_stw_count(w) == 7, "count %d", vox_stw_count(w));
    VOX_CHECK(ts, vox_stw_data_bytes(w) == 24 + 5 + 8 + 4 + 16 + 0 + 48, "bytes %llu",
              (unsigned long long)vox_stw_data_bytes(w));
    char *hdr = vox_stw_header(w, &err);
    VOX_CHECK(ts, hdr && strlen(hdr) % 8 == 0, "header not padded to 8 bytes");
    VOX_CHECK(ts, hdr && strncmp(hdr, "{\"__metadata__\":{\"format\":\"pt\"},", 32) == 0,
              "header does not start with the upstream metadata: %.60s", hdr ? hdr : "");
    free(hdr);
    char path[256];
    path_of(path, sizeof path, "ok.safetensors");
    VOX_CHECK(ts, vox_stw_write(w, path, &err) == 0, "write: %s", err.msg);
    vox_stw_free(w);

    vox_st_file *f = vox_st_open(path, &err);
    VOX_CHECK(ts, f != NULL, "open: %s", err.msg);
    if (!f) return;
    VOX_CHECK(ts, strcmp(vox_st_path(f), path) == 0, "path");
    VOX_CHECK(ts, vox_st_count(f) == 7, "count %d", vox_st_count(f));
    /* Layout order: element size descending, then name (as upstream). */
    const char *want_order[7] = {"i64", "b.f32", "conv", "scalar", "a.bf16", "empty", "u8"};
    for (int i = 0; i < 7; i++) {
        const vox_st_tensor *t = vox_st_at(f, i);
        VOX_CHECK(ts, t && strcmp(t->name, want_order[i]) == 0, "tensor %d is %s, want %s", i,
                  t ? t->name : "NULL", want_order[i]);
        if (t)
            VOX_CHECK(ts, ((uintptr_t)t->data) % vox_dtype_size(t->dtype) == 0, "%s misaligned",
                      t->name);
    }
    VOX_CHECK(ts, vox_st_at(f, 7) == NULL && vox_st_at(f, -1) == NULL, "out-of-range at()");
    const vox_st_tensor *t = vox_st_find(f, "b.f32");
    VOX_CHECK(ts, t && t->dtype == VOX_DT_F32 && t->ndim == 2 && t->shape[0] == 2 &&
                      t->shape[1] == 3 && t->numel == 6 && t->nbytes == 24 &&
                      memcmp(t->data, f32, 24) == 0, "b.f32 round trip");
    t = vox_st_find(f, "a.bf16");
    VOX_CHECK(ts, t && t->dtype == VOX_DT_BF16 && t->numel == 4 && memcmp(t->data, bf16, 8) == 0,
              "a.bf16 round trip");
    t = vox_st_find(f, "scalar");
    VOX_CHECK(ts, t && t->ndim == 0 && t->numel == 1 && *(const int32_t *)t->data == -42,
              "scalar round trip");
    t = vox_st_find(f, "u8");
    VOX_CHECK(ts, t && t->dtype == VOX_DT_U8 && memcmp(t->data, u8, 5) == 0, "u8 round trip");
    t = vox_st_find(f, "i64");
    VOX_CHECK(ts, t && t->dtype == VOX_DT_I64 && memcmp(t->data, i64, 16) == 0, "i64 round trip");
    t = vox_st_find(f, "empty");
    VOX_CHECK(ts, t && t->numel == 0 && t->nbytes == 0 && t->ndim == 2, "empty tensor");
    t = vox_st_find(f, "conv");
    int zeros = 1;
    for (int i = 0; t && i < 12; i++) zeros &= ((const float *)t->data)[i] == 0.f;
    VOX_CHECK(ts, t && zeros, "NULL data gives zeros");
    vox_mat m = vox_st_mat(t);
    VOX_CHECK(ts, m.rows == 2 && m.cols == 6 && m.dtype == VOX_DT_F32 && m.data == t->data,
              "conv as mat: %lld x %lld", (long long)m.rows, (long long)m.cols);
    m = vox_st_mat(vox_st_find(f, "a.bf16"));
    VOX_CHECK(ts, m.rows == 1 && m.cols == 4, "1-D as mat");
    VOX_CHECK(ts, vox_st_find(f, "nope") == NULL, "find of an absent name");

    /* vox_st_get */
    const vox_st_tensor *got = NULL;
    VOX_CHECK(ts, vox_st_get(f, "b.f32", VOX_DT_F32, 2, s_f32, &got, &err) == 0 && got,
              "get exact: %s", err.msg);
    VOX_CHECK(ts, vox_st_get(f, "a.bf16", -1, 1, s_bf16, &got, &err) == 0, "get any float");
    VOX_CHECK(ts, vox_st_get(f, "u8", -1, 1, s_u8, &got, &err) == VOX_ERR_FORMAT && !got,
              "get any float accepted U8");
    int64_t wrong[1] = {3072};
    int rc = vox_st_get(f, "a.bf16", VOX_DT_F32, 1, wrong, &got, &err);
    VOX_CHECK(ts, rc == VOX_ERR_FORMAT, "get mismatch rc %d", rc);
    char want[400];
    snprintf(want, sizeof want, "%s: tensor 'a.bf16': expected F32 [3072], found BF16 [4]", path);
    VOX_CHECK(ts, strcmp(err.msg, want) == 0, "get mismatch message: %s", err.msg);
    rc = vox_st_get(f, "b.f32", VOX_DT_F32, 1, s_f32, &got, &err);
    VOX_CHECK(ts, rc == VOX_ERR_FORMAT && strstr(err.msg, "expected F32 [2], found F32 [2, 3]"),
              "get ndim mismatch: %s", err.msg);
    rc = vox_st_get(f, "norm.weight", VOX_DT_BF16, 1, wrong, &got, &err);
    snprintf(want, sizeof want, "%s: tensor 'norm.weight' not found", path);
    VOX_CHECK(ts, rc == VOX_ERR_NOTFOUND && strcmp(err.msg, want) == 0, "get absent: %s",
              err.msg);
    vox_st_close(f);

    /* Without metadata the file is still valid. */
    w = vox_stw_new(&err);
    vox_stw_set_metadata(w, 0);
    vox_stw_add(w, "x", VOX_DT_F32, 2, s_f32, f32, &err);
    path_of(path, sizeof path, "nometa.safetensors");
    VOX_CHECK(ts, vox_stw_write(w, path, &err) == 0, "write: %s", err.msg);
    vox_stw_free(w);
    f = vox_st_open(path, &err);
    VOX_CHECK(ts, f && vox_st_count(f) == 1, "no-metadata file: %s", err.msg);
    vox_st_close(f);
}

static void test_corrupt(vox_test_state *ts) {
    char path[256];
    vox_error err = {0};
    vox_st_file *f;

    /* missing file: an I/O error naming the path */
    path_of(path, sizeof path, "absent.safetensors");
    f = vox_st_open(path, &err);
    VOX_CHECK(ts, !f && err.code == VOX_ERR_IO && strstr(err.msg, path) &&
                      strstr(err.msg, "cannot open"), "absent file: %s", err.msg);

    /* empty file */
    path_of(path, sizeof path, "empty.safetensors");
    FILE *fp = fopen(path, "wb");
    if (fp) fclose(fp);
    f = vox_st_open(path, &err);
    VOX_CHECK(ts, !f && err.code == VOX_ERR_FORMAT && strstr(err.msg, path) &&
                      strstr(err.msg, "file is empty"), "empty file: %s", err.msg);

    /* shorter than 8 bytes */
    path_of(path, sizeof path, "short.safetensors");
    fp = fopen(path, "wb");
    if (fp) {
        fwrite("abcde", 1, 5, fp);
        fclose(fp);
    }
    f = vox_st_open(path, &err);
    VOX_CHECK(ts, !f && strstr(err.msg, path) && strstr(err.msg, "file is 5 bytes, shorter than"),
              "short file: %s", err.msg);

    /* header length larger than the file */
    path_of(path, sizeof path, "hlen.safetensors");
    const char *h = "{}      ";
    vox_st_write_raw(path, 1000, h, 8, NULL, 0, &err);
    f = vox_st_open(path, &err);
    VOX_CHECK(ts, !f && strstr(err.msg, path) &&
                      strstr(err.msg, "header length 1000 exceeds the 8 bytes"),
              "header length too big: %s", err.msg);

    /* huge header length (2^63): no overflow */
    path_of(path, sizeof path, "hlen2.safetensors");
    vox_st_write_raw(path, UINT64_C(1) << 63, h, 8, NULL, 0, &err);
    f = vox_st_open(path, &err);
    VOX_CHECK(ts, !f && strstr(err.msg, "exceeds"), "header length 2^63: %s", err.msg);

    /* An empty header with no tensors is valid: zero tensors. */
    path_of(path, sizeof path, "zero.safetensors");
    vox_st_write_raw(path, 8, "{}      ", 8, NULL, 0, &err);
    f = vox_st_open(path, &err);
    VOX_CHECK(ts, f && vox_st_count(f) == 0, "'{}' header: %s", err.msg);
    vox_st_close(f);

    expect_bad_hdr(ts, "notjson.st", "{\"a\": {\"dtype\": \"F32\",", 0, "header is not valid JSON",
                   NULL);
    expect_bad_hdr(ts, "array.st", "[1, 2, 3]", 0, "header: expected a JSON object, found an array",
                   NULL);
    expect_bad_hdr(ts, "garbage.st", "{}  xyz", 0, "trailing garbage", NULL);
    expect_bad_hdr(ts, "entry.st", "{\"w\": [1,2]}", 0,
                   "tensor 'w': expected an object, found an array", NULL);
    expect_bad_hdr(ts, "nodtype.st", "{\"w\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                   "tensor 'w': expected \"dtype\" as a string, found nothing", NULL);
    expect_bad_hdr(ts, "dtype.st",
                   "{\"w\": {\"dtype\": \"F8_E4M3\", \"shape\": [4], \"data_offsets\": [0, 4]}}", 4,
                   "tensor 'w': unknown dtype \"F8_E4M3\"", NULL);
    expect_bad_hdr(ts, "shape.st",
                   "{\"w\": {\"dtype\": \"F32\", \"shape\": 4, \"data_offsets\": [0, 16]}}", 16,
                   "tensor 'w': expected \"shape\" as an array, found a number", NULL);
    expect_bad_hdr(ts, "negdim.st",
                   "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, -2], \"data_offsets\": [0, 16]}}",
                   16, "tensor 'w': shape[1]: expected a non-negative integer, found -2", NULL);
    expect_bad_hdr(ts, "fracdim.st",
                   "{\"w\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", 4,
                   "tensor 'w': shape[0]: expected a non-negative integer, found 1.5", NULL);
    expect_bad_hdr(ts, "strdim.st",
                   "{\"w\": {\"dtype\": \"F32\", \"shape\": [\"4\"], \"data_offsets\": [0, 16]}}",
                   16, "tensor 'w': shape[0]: expected a non-negative integer, found a string",
                   NULL);
    expect_bad_hdr(ts, "ndim.st",
                   "{\"w\": {\"dtype\": \"U8\", \"shape\": [1,1,1,1,1,1,1,1,1], "
                   "\"data_offsets\": [0, 1]}}", 1, "tensor 'w': expected at most 8 dims, found 9",
                   NULL);
    expect_bad_hdr(ts, "off3.st",
                   "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}", 8,
                   "tensor 'w': expected \"data_offsets\" as [begin, end]", "[0,4,8]");
    expect_bad_hdr(ts, "offneg.st",
                   "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", 8,
                   "tensor 'w': expected \"data_offsets\" as [begin, end]", NULL);
    expect_bad_hdr(ts, "offmiss.st", "{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", 8,
                   "tensor 'w': expected \"data_offsets\"", "found nothing");
    expect_bad_hdr(ts, "order.st",
                   "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}", 8,
                   "tensor 'w': data_offsets begin 8 > end 4", NULL);
    expect_bad_hdr(ts, "beyond.st",
                   "{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 12,
                   "tensor 'w': data_offsets end 16 beyond the data area of 12 bytes", NULL);
    expect_bad_hdr(ts, "size.st",
                   "{\"w\": {\"dtype\": \"BF16\", \"shape\": [3, 2], \"data_offsets\": [0, 16]}}",
                   16, "tensor 'w': size mismatch: BF16 [3, 2] needs 12 bytes, data_offsets span 16",
                   NULL);
    expect_bad_hdr(ts, "huge.st",
                   "{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296], "
                   "\"data_offsets\": [0, 16]}}", 16, "tensor 'w': size mismatch", "needs more than");
    expect_bad_hdr(ts, "overlap.st",
                   "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
                   " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [12, 20]}}", 20,
                   "tensor 'b': data [12, 20) overlaps tensor 'a' [0, 16)", NULL);
    expect_bad_hdr(ts, "overlap2.st",
                   "{\"big\": {\"dtype\": \"U8\", \"shape\": [32], \"data_offsets\": [0, 32]},"
                   " \"inner\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [8, 12]}}", 32,
                   "tensor 'inner'", "overlaps tensor 'big'");
    expect_bad_hdr(ts, "dup.st",
                   "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                   " \"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8,
                   "tensor 'w': duplicate name in header", NULL);
    expect_bad_hdr(ts, "align.st",
                   "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [2, 6]}}   ", 8,
                   "tensor 'w': data at file offset", "not aligned to its 4-byte F32 elements");

    /* Zero-size tensors anywhere, and adjacent tensors, are fine. */
    path_of(path, sizeof path, "adjacent.st");
    const char *okh = "{\"__metadata__\": {\"x\": \"y\"}, "
                      "\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                      " \"z\": {\"dtype\": \"F32\", \"shape\": [0, 5], \"data_offsets\": [4, 4]},"
                      " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}";
    char padded[512];
    size_t hl = strlen(okh);
    memcpy(padded, okh, hl);
    while ((8 + hl) % 8) padded[hl++] = ' ';
    unsigned char data[16] = {0};
    vox_st_write_raw(path, hl, padded, hl, data, 16, &err);
    f = vox_st_open(path, &err);
    VOX_CHECK(ts, f && vox_st_count(f) == 3, "adjacent and zero-size tensors: %s", err.msg);
    vox_st_close(f);
}

/* Deterministic mutation fuzz: random byte edits of a valid header must either open with every
 * tensor inside the mapping or fail with a one-line message naming the file (under ASan this
 * also proves no out-of-bounds read). */
static void test_mutations(vox_test_state *ts) {
    vox_error err = {0};
    vox_stw *w = vox_stw_new(&err);
    int64_t s1[2] = {3, 4}, s2[1] = {5}, s3[3] = {2, 2, 2};
    vox_stw_add(w, "layers.0.attention.wq.weight", VOX_DT_BF16, 2, s1, NULL, &err);
    vox_stw_add(w, "norm.weight", VOX_DT_F32, 1, s2, NULL, &err);
    vox_stw_add(w, "conv", VOX_DT_U8, 3, s3, NULL, &err);
    char *hdr = vox_stw_header(w, &err);
    size_t hl = strlen(hdr);
    size_t dl = (size_t)vox_stw_data_bytes(w);
    vox_stw_free(w);
    unsigned char *data = calloc(1, dl);
    char *mut = malloc(hl);
    char path[256];
    path_of(path, sizeof path, "mut.st");
    const char alphabet[] = "{}[],:\"0123456789-.eE \\aFBIU_";
    uint64_t x = 0x2545F4914F6CDD1Dull;
    int opened = 0, failed = 0, bad = 0;
    for (int it = 0; it < 600; it++) {
        memcpy(mut, hdr, hl);
        int edits = 1 + (int)(it % 3);
        for (int e = 0; e < edits; e++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            size_t pos = (size_t)(x % hl);
            mut[pos] = alphabet[(x >> 32) % (sizeof alphabet - 1)];
        }
        uint64_t declared = hl;
        if (it % 50 == 49) declared = hl + (x >> 60) - 8; /* also a wrong length now and then */
        vox_st_write_raw(path, declared, mut, hl, data, dl, &err);
        memset(&err, 0, sizeof err);
        vox_st_file *f = vox_st_open(path, &err);
        if (f) {
            opened++;
            for (int i = 0; i < vox_st_count(f); i++) {
                const vox_st_tensor *t = vox_st_at(f, i);
                const unsigned char *d = t->data;
                volatile unsigned char sink = 0;
                for (size_t k = 0; k < t->nbytes; k++) sink ^= d[k]; /* ASan checks the reads */
                (void)sink;
            }
            vox_st_close(f);
        } else {
            failed++;
            if (!strstr(err.msg, path) || strchr(err.msg, '\n') || err.code != VOX_ERR_FORMAT) bad++;
        }
    }
    VOX_CHECK(ts, bad == 0, "%d of %d rejected mutations had a bad message", bad, failed);
    VOX_CHECK(ts, failed > 100, "only %d of 600 mutations rejected", failed);
    printf("mutations: %d opened, %d rejected\n", opened, failed);
    free(mut);
    free(data);
    free(hdr);
}

int main(void) {
    vox_test_state ts = {0};
    snprintf(g_dir, sizeof g_dir, "/tmp/vox_test_st_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip(&ts);
    test_corrupt(&ts);
    test_mutations(&ts);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_dir);
    return vox_test_done(&ts, "test_safetensors");
}
