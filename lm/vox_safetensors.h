/* vox_safetensors.h - read-only, mmap'd safetensors files (the consolidated.safetensors layout).
 *
 * Format: u64 little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {...}}
 * then the raw data; offsets are relative to the first byte after the header.
 *
 * vox_st_open validates the whole header before returning: well-formed JSON object, every entry
 * has a known dtype (BF16 F16 F32 I32 I64 U8), an integer shape of non-negative dims, offsets
 * begin <= end inside the data area, (product of shape) x (dtype size) == end - begin, no two
 * tensors overlap (zero-size tensors never overlap), names unique, and each tensor's data
 * aligned in the file to its element size (so typed reads are never misaligned; upstream pads
 * the header to 8 bytes); "__metadata__" is ignored. Only whitespace may follow the JSON in the
 * header. Any violation fails with one line naming the file, the tensor and what was expected
 * versus found.
 *
 * Ownership: the vox_st_file owns the mapping and every vox_st_tensor (names, data pointers);
 * all stay valid until vox_st_close. Tensor data are read-only pointers into the mapping. A
 * file is immutable after open and may be shared by any number of threads. */
#ifndef VOX_SAFETENSORS_H
#define VOX_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "vox_backend.h"
#include "vox_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VOX_ST_MAX_DIMS 8

typedef struct vox_st_tensor {
    const char *name;
    vox_dtype dtype;
    int ndim;                        /* 0 .. VOX_ST_MAX_DIMS */
    int64_t shape[VOX_ST_MAX_DIMS];  /* shape[0..ndim-1] */
    int64_t numel;                   /* product of shape (1 for a scalar) */
    const void *data;                /* inside the mapping; nbytes bytes */
    size_t nbytes;
} vox_st_tensor;

typedef struct vox_st_file vox_st_file;

vox_st_file *vox_st_open(const char *path, vox_error *err);
void vox_st_close(vox_st_file *f);

const char *vox_st_path(const vox_st_file *f);
int vox_st_count(const vox_st_file *f);
const vox_st_tensor *vox_st_at(const vox_st_file *f, int i);        /* in file order */
const vox_st_tensor *vox_st_find(const vox_st_file *f, const char *name); /* NULL if absent */

/* Look up a tensor that must exist with exactly this dtype and shape (ndim dims). On mismatch
 * returns VOX_ERR_NOTFOUND / VOX_ERR_FORMAT with e.g.
 *   "model/consolidated.safetensors: tensor 'norm.weight': expected BF16 [3072], found F32 [3072]"
 * dtype may be -1 to accept any float dtype (F32, BF16, F16). */
int vox_st_get(const vox_st_file *f, const char *name, int dtype, int ndim,
               const int64_t *shape, const vox_st_tensor **out, vox_error *err);

/* A tensor as a backend weight matrix (CPU backend: points into the mapping): rows = shape[0],
 * cols = product of the other dims (a conv weight [out][in][k] gives out x in*k); a 1-D tensor
 * gives 1 x shape[0], a scalar 1 x 1. */
vox_mat vox_st_mat(const vox_st_tensor *t);

#ifdef __cplusplus
}
#endif
#endif /* VOX_SAFETENSORS_H */
