/* dtype.c - element sizes and names of vox_dtype (safetensors spelling). */
#include "vox_backend.h"

size_t vox_dtype_size(vox_dtype t) {
    switch (t) {
    case VOX_DT_F32: return 4;
    case VOX_DT_BF16: return 2;
    case VOX_DT_F16: return 2;
    case VOX_DT_I32: return 4;
    case VOX_DT_I64: return 8;
    case VOX_DT_U8: return 1;
    }
    return 0;
}

const char *vox_dtype_name(vox_dtype t) {
    switch (t) {
    case VOX_DT_F32: return "F32";
    case VOX_DT_BF16: return "BF16";
    case VOX_DT_F16: return "F16";
    case VOX_DT_I32: return "I32";
    case VOX_DT_I64: return "I64";
    case VOX_DT_U8: return "U8";
    }
    return "?";
}
