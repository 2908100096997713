/* vox_common.h - error reporting, logging and small utilities shared by every layer.
 *
 * Ownership: a vox_error is owned by the caller; library functions fill it on failure and
 * never allocate for it. Functions that can fail return an int status (VOX_OK == 0) and,
 * when given a non-NULL vox_error*, write one human-readable line into it naming the file,
 * the item and what was expected versus found. */
#ifndef VOX_COMMON_H
#define VOX_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    VOX_OK = 0,
    VOX_ERR_IO = 1,          /* cannot open/read/write/mmap a file */
    VOX_ERR_FORMAT = 2,      /* a file is malformed or does not match expectations */
    VOX_ERR_NOMEM = 3,       /* allocation failed */
    VOX_ERR_ARG = 4,         /* invalid argument from the caller */
    VOX_ERR_DEVICE = 5,      /* backend/device failure (e.g. no CUDA driver) */
    VOX_ERR_UNSUPPORTED = 6, /* valid request this build or machine cannot serve */
    VOX_ERR_NOTFOUND = 7     /* a named item (tensor, key, token) does not exist */
};

#define VOX_ERROR_MSG_LEN 512

typedef struct vox_error {
    int code;                    /* VOX_OK or one of the VOX_ERR_* codes */
    char msg[VOX_ERROR_MSG_LEN]; /* one line, no trailing newline */
} vox_error;

/* Fill *err (if non-NULL) with code and a printf-style message; returns code so callers can
 * write `return vox_set_error(err, VOX_ERR_IO, "...")`. */
int vox_set_error(vox_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Short name of an error code ("io", "format", ...). */
const char *vox_error_name(int code);

/* Log verbosity, passed explicitly (no global state): 0 quiet, 1 normal, 2 verbose. */
typedef enum { VOX_LOG_QUIET = 0, VOX_LOG_INFO = 1, VOX_LOG_VERBOSE = 2 } vox_log_level;

/* Monotonic time in seconds. */
double vox_time_now(void);

/* Checked allocation helpers: return NULL and set err on failure. */
void *vox_malloc(size_t n, vox_error *err);
void *vox_calloc(size_t count, size_t size, vox_error *err);

/* Read a whole file into a NUL-terminated heap buffer (caller frees). */
char *vox_read_file(const char *path, size_t *out_len, vox_error *err);

/* Strict UTF-8 validation (what a Python str can hold: no overlongs, no surrogates, <= U+10FFFF).
 * Returns the offset of the first byte of the first invalid sequence, or n when all is valid. */
size_t vox_utf8_check(const unsigned char *s, size_t n);

/* Standard padded base64 (RFC 4648: length a multiple of 4, '=' only at the end, no
 * whitespace) of s[0, n) into out (capacity >= 3 * n / 4). Returns the decoded length, or -1
 * for any other input. */
long vox_b64_decode(const char *s, size_t n, unsigned char *out);

/* mkdir -p: create dir and its missing parents (mode 0777 & ~umask). */
int vox_mkdir_p(const char *dir, vox_error *err);

#ifdef __cplusplus
}
#endif
#endif /* VOX_COMMON_H */
