/* vox_st_write.h - a small safetensors writer for vox-mkmodel and the tests.
 *
 * Layout as upstream (the Python/Rust `safetensors` package): u64 little-endian header length,
 * a compact JSON header {"__metadata__":{"format":"pt"},"name":{"dtype":..,"shape":[..],
 * "data_offsets":[b,e]},...} padded with spaces to a multiple of 8 bytes, then the data.
 * Tensors are laid out sorted by element size (largest first) then by name, as upstream does,
 * so every tensor is aligned to its element size.
 *
 * Tensor data is either copied at add time or generated at write time by a callback, which
 * is called in order over consecutive element ranges of at most VOX_STW_CHUNK elements, so a
 * multi-GB file is written with O(chunk) memory.
 *
 * Ownership: the writer owns copies of names, shapes and copied data; callback contexts stay
 * owned by the caller and must outlive vox_stw_write. */
#ifndef VOX_ST_WRITE_H
#define VOX_ST_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "vox_backend.h"
#include "vox_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VOX_STW_CHUNK (1 << 18) /* elements per generator call, at most */

/* Fill buf with elements [first, first + n) of the tensor, in its dtype. */
typedef int (*vox_stw_gen_fn)(void *ctx, void *buf, int64_t first, int64_t n, vox_error *err);

typedef struct vox_stw vox_stw;

vox_stw *vox_stw_new(vox_error *err);
void vox_stw_free(vox_stw *w);

/* Omit "__metadata__" (default: {"format":"pt"}). */
void vox_stw_set_metadata(vox_stw *w, int with_metadata);

/* Add a tensor whose nbytes = prod(shape) x dtype size are copied from data (NULL: zeros). */
int vox_stw_add(vox_stw *w, const char *name, vox_dtype dtype, int ndim, const int64_t *shape,
                const void *data, vox_error *err);
/* Add a tensor whose data are produced by gen(ctx, ...) while writing. */
int vox_stw_add_gen(vox_stw *w, const char *name, vox_dtype dtype, int ndim,
                    const int64_t *shape, vox_stw_gen_fn gen, void *ctx, vox_error *err);

int vox_stw_count(const vox_stw *w);
uint64_t vox_stw_data_bytes(const vox_stw *w); /* sum of tensor sizes */

/* The header JSON as it will be written (with padding), heap string the caller frees. */
char *vox_stw_header(vox_stw *w, vox_error *err);

/* Write the file (to path + ".tmp", then rename). */
int vox_stw_write(vox_stw *w, const char *path, vox_error *err);

/* For corrupt-file tests: write `declared_len` as the u64 length, then header bytes as given
 * (hlen bytes, not padded), then data. */
int vox_st_write_raw(const char *path, uint64_t declared_len, const char *header, size_t hlen,
                     const void *data, size_t data_len, vox_error *err);

#ifdef __cplusplus
}
#endif
#endif /* VOX_ST_WRITE_H */
