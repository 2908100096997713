/* vox_pt_write.h - writes one tensor as a PyTorch checkpoint (.pt, the zip format of
 * torch.save), e.g. the voice_embedding/<name>.pt files of Voxtral TTS.
 *
 * Layout as torch.save (torch 2.x) writes it: an uncompressed ("stored") zip whose entries
 * live under one directory named after the file's stem ("casual_male/..."):
 *   <stem>/data.pkl            pickle protocol 2: torch._utils._rebuild_tensor_v2(
 *                                persistent_load(('storage', torch.<T>Storage, '0', 'cpu', numel)),
 *                                0, shape, contiguous stride, False, collections.OrderedDict())
 *   <stem>/.format_version     "1"
 *   <stem>/.storage_alignment  "64"
 *   <stem>/byteorder           "little"
 *   <stem>/data/0              raw little-endian elements, 64-byte aligned in the file
 *   <stem>/version             "3\n"
 * then the central directory and the end record. Every entry carries its CRC-32.
 * Supported dtypes: VOX_DT_BF16 (BFloat16Storage), VOX_DT_F32 (FloatStorage),
 * VOX_DT_F16 (HalfStorage).
 *
 * Ownership: nothing retained; data belongs to the caller. No global state. */
#ifndef VOX_PT_WRITE_H
#define VOX_PT_WRITE_H

#include <stdint.h>

#include "vox_backend.h"
#include "vox_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Write data (prod(shape) elements of dtype, row-major) to path; ndim in 1..4. */
int vox_pt_write(const char *path, vox_dtype dtype, int ndim, const int64_t *shape,
                 const void *data, vox_error *err);

#ifdef __cplusplus
}
#endif
#endif /* VOX_PT_WRITE_H */
