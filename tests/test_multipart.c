/* test_multipart.c - the multipart/form-data parser (apps/server/multipart.h) on hand-built
 * bodies: each case states the bytes and the expected parts or the error. Includes a body
 * captured from the openai Python SDK (tests/fixtures/openai_transcription_body.bin, see
 * docs/server.md "HTTP") and every truncation of a valid body (all must fail, none may crash). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../apps/server/multipart.h"
#include "vox_test.h"

static vox_test_state T;

static int parse_s(const char *body, const char *bnd, srv_mp_form *f, vox_error *e) {
    return srv_mp_parse(body, strlen(body), bnd, NULL, f, e);
}

static int part_is(const srv_mp_part *p, const char *name, const char *filename, const char *ct,
                   const char *data) {
    if (!p) return 0;
    if (strcmp(p->name, name)) return 0;
    if ((filename == NULL) != (p->filename == NULL)) return 0;
    if (filename && strcmp(p->filename, filename)) return 0;
    if ((ct == NULL) != (p->content_type == NULL)) return 0;
    if (ct && strcmp(p->content_type, ct)) return 0;
    return p->len == strlen(data) && !memcmp(p->data, data, p->len);
}

/* expect failure whose message contains `needle` */
static void expect_err(const char *label, const char *body, const char *bnd, const char *needle) {
    srv_mp_form f;
    vox_error e = {0};
    int rc = parse_s(body, bnd, &f, &e);
    VOX_CHECK(&T, rc != 0, "%s: parsed, expected an error", label);
    VOX_CHECK(&T, rc == 0 || strstr(e.msg, needle), "%s: message '%s' lacks '%s'", label, e.msg,
              needle);
    VOX_CHECK(&T, f.n == 0 && f.parts == NULL, "%s: form not emptied on error", label);
    srv_mp_free(&f);
}

static void test_boundary(void) {
    char b[SRV_MP_BOUNDARY_MAX + 1];
    vox_error e = {0};
    VOX_CHECK(
        &T, !srv_mp_boundary("multipart/form-data; boundary=abc123", b, &e) && !strcmp(b, "abc123"),
        "plain boundary: %s", e.msg);
    VOX_CHECK(&T,
              !srv_mp_boundary("Multipart/Form-Data;BOUNDARY=\"a b:c?=\"", b, &e) &&
                  !strcmp(b, "a b:c?="),
              "quoted boundary with bchars, case-insensitive names: %s", e.msg);
    VOX_CHECK(
        &T, !srv_mp_boundary("multipart/form-data; charset=utf-8; boundary=\"x\\\"\"", b, &e) == 0,
        "a quote is not a bchar (must be refused)");
    VOX_CHECK(&T,
              !srv_mp_boundary("multipart/form-data ; foo=\"bar;baz\" ; boundary=q-1", b, &e) &&
                  !strcmp(b, "q-1"),
              "quoted ';' in another parameter: %s", e.msg);
    VOX_CHECK(&T, srv_mp_boundary("application/json", b, &e) && strstr(e.msg, "multipart"),
              "non-multipart type: %s", e.msg);
    VOX_CHECK(&T, srv_mp_boundary("multipart/form-dataX; boundary=a", b, &e),
              "type prefix match is not a match");
    VOX_CHECK(&T, srv_mp_boundary("multipart/form-data", b, &e) && strstr(e.msg, "no boundary"),
              "no boundary: %s", e.msg);
    VOX_CHECK(&T, srv_mp_boundary("multipart/form-data; boundary=\"\"", b, &e), "empty boundary");
    VOX_CHECK(&T, srv_mp_boundary("multipart/form-data; boundary=\"abc \"", b, &e),
              "boundary ending in space");
    char longct[200];
    snprintf(longct, sizeof longct, "multipart/form-data; boundary=%071d", 7);
    VOX_CHECK(&T, srv_mp_boundary(longct, b, &e), "71-char boundary refused");
    snprintf(longct, sizeof longct, "multipart/form-data; boundary=%070d", 7);
    VOX_CHECK(&T, !srv_mp_boundary(longct, b, &e) && strlen(b) == 70, "70-char boundary: %s",
              e.msg);
    VOX_CHECK(&T,
              srv_mp_boundary("multipart/form-data; boundary=\"abc", b, &e) &&
                  strstr(e.msg, "unterminated"),
              "unterminated quote: %s", e.msg);
    VOX_CHECK(&T, srv_mp_boundary("multipart/form-data; boundary=a; boundary=b", b, &e),
              "two boundaries");
    VOX_CHECK(&T, srv_mp_boundary(NULL, b, &e), "NULL content type");
}

static void test_basic(void) {
    const char *body = "--XyZ\r\n"
                       "Content-Disposition: form-data; name=\"file\"; filename=\"a b.wav\"\r\n"
                       "Content-Type: audio/wav\r\n"
                       "\r\n"
                       "RIFF\r\nxx--XyZ\n--XyZ\r\n\r\n"
                       "\r\n--XyZ\r\n"
                       "content-disposition: FORM-DATA;name=model\r\n"
                       "\r\n"
                       "voxtral\r\n"
                       "--XyZ--\r\n";
    srv_mp_form f;
    vox_error e = {0};
    int rc = parse_s(body, "XyZ", &f, &e);
    VOX_CHECK(&T, rc == 0 && f.n == 2, "basic: rc %d n %zu %s", rc, f.n, e.msg);
    if (rc == 0 && f.n == 2) {
        VOX_CHECK(
            &T,
            part_is(&f.parts[0], "file", "a b.wav", "audio/wav", "RIFF\r\nxx--XyZ\n--XyZ\r\n\r\n"),
            "basic: file part (delimiter-like text kept as data), len %zu", f.parts[0].len);
        VOX_CHECK(&T, part_is(&f.parts[1], "model", NULL, NULL, "voxtral"), "basic: model part");
        VOX_CHECK(&T, srv_mp_find(&f, "model") == &f.parts[1] && !srv_mp_find(&f, "nope"), "find");
    }
    srv_mp_free(&f);
}

/* CRLF "--" B followed by other text: RFC 2046 forbids the delimiter inside data, so this is
 * an error rather than data. */
static void test_delim_garbage(void) {
    expect_err("delimiter followed by text",
               "--B\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--BZ\r\n--B--", "B",
               "not followed by CRLF");
}

static void test_preamble_epilogue_padding(void) {
    const char *body = "This is a preamble --b2 with the boundary not at a line start\r\n"
                       "--b2 \t\r\n" /* transport padding */
                       "Content-Disposition: form-data; name=\"a\"\r\n\r\n"
                       "1\r\n--b2\r\n"
                       "Content-Disposition: form-data; name=\"empty\"\r\n\r\n"
                       "\r\n--b2--  epilogue \r\n--b2\r\ngarbage after the close";
    srv_mp_form f;
    vox_error e = {0};
    int rc = parse_s(body, "b2", &f, &e);
    VOX_CHECK(&T, rc == 0 && f.n == 2, "preamble: rc %d n %zu %s", rc, f.n, e.msg);
    if (!rc && f.n == 2) {
        VOX_CHECK(&T, part_is(&f.parts[0], "a", NULL, NULL, "1"), "preamble: part a");
        VOX_CHECK(&T, part_is(&f.parts[1], "empty", NULL, NULL, ""), "empty part data");
    }
    srv_mp_free(&f);
}

static void test_repeated_and_params(void) {
    const char *body =
        "--q\r\nContent-Disposition: form-data; name=\"timestamp_granularities[]\"\r\n\r\nword"
        "\r\n--q\r\nContent-Disposition: form-data; name=\"timestamp_granularities[]\"\r\n\r\n"
        "segment\r\n--q\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\\\"y.mp3\"; "
        "filename*=UTF-8''%C3%A9t%C3%A9.mp3\r\nContent-Type:   audio/mpeg  \r\n"
        "X-Other: ignored\r\n\r\nID3\r\n--q--";
    srv_mp_form f;
    vox_error e = {0};
    int rc = parse_s(body, "q", &f, &e);
    VOX_CHECK(&T, rc == 0 && f.n == 3, "repeated: rc %d n %zu %s", rc, f.n, e.msg);
    if (!rc && f.n == 3) {
        VOX_CHECK(&T, part_is(&f.parts[0], "timestamp_granularities[]", NULL, NULL, "word"),
                  "granularity 1");
        VOX_CHECK(&T, part_is(&f.parts[1], "timestamp_granularities[]", NULL, NULL, "segment"),
                  "granularity 2");
        VOX_CHECK(&T, part_is(&f.parts[2], "f", "\xc3\xa9t\xc3\xa9.mp3", "audio/mpeg", "ID3"),
                  "filename* overrides filename, Content-Type trimmed: '%s' '%s'",
                  f.parts[2].filename ? f.parts[2].filename : "(null)",
                  f.parts[2].content_type ? f.parts[2].content_type : "(null)");
    }
    srv_mp_free(&f);
    /* escaped quote in a plain quoted filename */
    rc = parse_s("--q\r\nContent-Disposition: form-data; name=f; filename=\"x\\\"y\"\r\n\r\n"
                 "\r\n--q--",
                 "q", &f, &e);
    VOX_CHECK(&T, rc == 0 && f.n == 1 && part_is(&f.parts[0], "f", "x\"y", NULL, ""),
              "quoted-pair in filename: %s", e.msg);
    srv_mp_free(&f);
}

static void test_errors(void) {
    const char *cd = "Content-Disposition: form-data; name=a\r\n";
    char buf[1024];
    expect_err("no boundary in body", "hello world", "B", "does not contain the boundary");
    expect_err("empty body", "", "B", "does not contain");
    expect_err("only close delimiter", "--B--\r\n", "B", "no parts");
    snprintf(buf, sizeof buf, "--B\r\n%s\r\nabc", cd);
    expect_err("missing final boundary", buf, "B", "truncated");
    snprintf(buf, sizeof buf, "--B\r\n%s\r\nabc\r\n--B", cd);
    expect_err("ends right after a delimiter", buf, "B", "closing");
    snprintf(buf, sizeof buf, "--B\r\n%s\r\nabc\r\n--B-", cd);
    expect_err("half a close delimiter", buf, "B", "closing");
    expect_err("bare LF after delimiter",
               "--B\nContent-Disposition: form-data; name=a\n\nabc\n--B--\n", "B",
               "not followed by CRLF");
    expect_err("bare LF inside headers",
               "--B\r\nContent-Disposition: form-data; name=a\nContent-Type: x\r\n\r\nabc\r\n--B--",
               "B", "bare CR or LF");
    expect_err("no Content-Disposition", "--B\r\nContent-Type: text/plain\r\n\r\nabc\r\n--B--", "B",
               "no Content-Disposition");
    expect_err("no headers at all", "--B\r\n\r\nabc\r\n--B--", "B", "no Content-Disposition");
    expect_err("no name", "--B\r\nContent-Disposition: form-data; filename=\"a\"\r\n\r\nx\r\n--B--",
               "B", "no name");
    expect_err("not form-data", "--B\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--B--",
               "B", "expected form-data");
    expect_err("two names",
               "--B\r\nContent-Disposition: form-data; name=a; name=b\r\n\r\nx\r\n--B--", "B",
               "two 'name'");
    expect_err("unterminated quote",
               "--B\r\nContent-Disposition: form-data; name=\"a\r\n\r\nx\r\n--B--", "B",
               "unterminated");
    expect_err("folded header",
               "--B\r\nContent-Disposition: form-data;\r\n name=a\r\n\r\nx\r\n--B--", "B",
               "folded");
    expect_err("header without colon",
               "--B\r\nContent-Disposition: form-data; name=a\r\nBogus\r\n\r\nx\r\n--B--", "B",
               "malformed header");
    expect_err("headers never end", "--B\r\nContent-Disposition: form-data; name=a\r\nx: y", "B",
               "not terminated");
    expect_err("base64 transfer encoding",
               "--B\r\nContent-Disposition: form-data; name=a\r\nContent-Transfer-Encoding: "
               "base64\r\n\r\neA==\r\n--B--",
               "B", "not supported");
    expect_err("bad filename*",
               "--B\r\nContent-Disposition: form-data; name=a; filename*=latin1''x\r\n\r\nx\r\n"
               "--B--",
               "B", "filename*");
    /* a header block over the limit (one 9000-byte header), with and without its end */
    size_t big = 9000;
    char *h = malloc(big + 200);
    if (!h) return;
    int o = snprintf(h, 200, "--B\r\n%sX-Big: ", cd);
    memset(h + o, 'a', big);
    strcpy(h + o + big, "\r\n\r\nx\r\n--B--");
    expect_err("huge header", h, "B", "limit");
    strcpy(h + o + big, "");
    expect_err("huge unterminated header", h, "B", "limit");
    free(h);
    /* max_parts */
    char many[4096];
    size_t m = 0;
    for (int i = 0; i < 5; i++)
        m += (size_t)snprintf(many + m, sizeof many - m, "--B\r\n%s\r\n%d\r\n", cd, i);
    m += (size_t)snprintf(many + m, sizeof many - m, "--B--");
    srv_mp_form f;
    vox_error e = {0};
    srv_mp_limits lim = {4, 0};
    int rc = srv_mp_parse(many, m, "B", &lim, &f, &e);
    VOX_CHECK(&T, rc && strstr(e.msg, "more than 4 parts"), "max_parts 4 with 5 parts: %s", e.msg);
    lim.max_parts = 5;
    rc = srv_mp_parse(many, m, "B", &lim, &f, &e);
    VOX_CHECK(&T, rc == 0 && f.n == 5 && part_is(&f.parts[4], "a", NULL, NULL, "4"),
              "max_parts 5 with 5 parts: %s", e.msg);
    srv_mp_free(&f);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Random binary payload rich in CR, LF, '-' and NUL round-trips byte-exactly; every strict
 * prefix of the body up to the close delimiter fails cleanly. */
static void test_binary_and_truncation(void) {
    const char *bnd = "----bnd7";
    size_t nd = 3000;
    unsigned char *d = malloc(nd);
    unsigned char *body = malloc(nd + 400);
    if (!d || !body) return;
    const unsigned char alpha[] = {'\r', '\n', '-', 0, 'b', 'n', 'd', '7', 0xff, 'x'};
    for (size_t i = 0; i < nd; i++)
        d[i] = alpha[rnd() % sizeof alpha];
    /* the payload must not contain the delimiter (RFC 2046); make sure by construction */
    for (size_t i = 0; i + 12 <= nd; i++)
        if (!memcmp(d + i, "\r\n------bnd7", 12)) d[i] = 'x';
    size_t o =
        (size_t)sprintf((char *)body,
                        "--%s\r\nContent-Disposition: form-data; name=\"file\"; "
                        "filename=\"r.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                        bnd);
    memcpy(body + o, d, nd);
    o += nd;
    o += (size_t)sprintf((char *)body + o,
                         "\r\n--%s\r\nContent-Disposition: form-data; "
                         "name=\"model\"\r\n\r\nm\r\n--%s--\r\n",
                         bnd, bnd);
    srv_mp_form f;
    vox_error e = {0};
    int rc = srv_mp_parse(body, o, bnd, NULL, &f, &e);
    VOX_CHECK(&T, rc == 0 && f.n == 2 && f.parts[0].len == nd && !memcmp(f.parts[0].data, d, nd),
              "binary payload round trip: rc %d %s", rc, e.msg);
    srv_mp_free(&f);
    size_t full = o - 2; /* without the final CRLF (epilogue) the body is still complete */
    int bad = 0;
    for (size_t k = 0; k < full; k++) {
        rc = srv_mp_parse(body, k, bnd, NULL, &f, &e);
        if (rc == 0 || f.n || f.parts) bad++;
        srv_mp_free(&f);
    }
    VOX_CHECK(&T, bad == 0, "%d of %zu truncated bodies were accepted", bad, full);
    rc = srv_mp_parse(body, full, bnd, NULL, &f, &e);
    VOX_CHECK(&T, rc == 0 && f.n == 2, "body without epilogue CRLF: %s", e.msg);
    srv_mp_free(&f);
    free(d);
    free(body);
}

/* Body captured from the openai SDK (httpx) for audio.transcriptions.create; its boundary is
 * in the file's first line. */
static void test_openai_capture(void) {
    const char *path = VOX_SOURCE_DIR "/tests/fixtures/openai_transcription_body.bin";
    vox_error e = {0};
    size_t n = 0;
    char *body = vox_read_file(path, &n, &e);
    VOX_CHECK(&T, body != NULL, "%s", e.msg);
    if (!body) return;
    char ct[128];
    const char *eol = strstr(body, "\r\n");
    VOX_CHECK(&T, eol && body[0] == '-' && body[1] == '-', "capture starts with a delimiter");
    if (!eol) {
        free(body);
        return;
    }
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%.*s", (int)(eol - body - 2), body + 2);
    char b[SRV_MP_BOUNDARY_MAX + 1];
    srv_mp_form f;
    int rc = srv_mp_boundary(ct, b, &e);
    if (!rc) rc = srv_mp_parse(body, n, b, NULL, &f, &e);
    VOX_CHECK(&T, rc == 0, "openai capture: %s", e.msg);
    if (!rc) {
        const srv_mp_part *file = srv_mp_find(&f, "file"), *model = srv_mp_find(&f, "model"),
                          *fmt = srv_mp_find(&f, "response_format");
        VOX_CHECK(&T, file && file->filename && file->len > 44 && !memcmp(file->data, "RIFF", 4),
                  "capture: file part is the WAV");
        VOX_CHECK(&T, model && model->len == 7 && !memcmp(model->data, "voxtral", 7),
                  "capture: model");
        VOX_CHECK(&T, fmt && fmt->len == 12 && !memcmp(fmt->data, "verbose_json", 12),
                  "capture: response_format");
        size_t ng = 0;
        for (size_t i = 0; i < f.n; i++)
            ng += !strcmp(f.parts[i].name, "timestamp_granularities[]");
        VOX_CHECK(&T, ng == 2, "capture: 2 timestamp_granularities[] parts, got %zu", ng);
        srv_mp_free(&f);
    }
    free(body);
}

int main(void) {
    test_boundary();
    test_basic();
    test_delim_garbage();
    test_preamble_epilogue_padding();
    test_repeated_and_params();
    test_errors();
    test_binary_and_truncation();
    test_openai_capture();
    return vox_test_done(&T, "test_multipart");
}
