/* isa.c - choosing the SIMD path of the matrix-vector kernels at run time (see vox_cpu.h).
 * GCC's __builtin_cpu_supports reads CPUID and checks the OS saves the wide registers. */
#include <stdlib.h>
#include <string.h>

#include "vox_cpu.h"

int vox_cpu_isa_supported(vox_cpu_isa isa) {
    switch (isa) {
    case VOX_ISA_SCALAR: return 1;
#if defined(__x86_64__)
    case VOX_ISA_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case VOX_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("fma");
    case VOX_ISA_AVX512BF16:
        return vox_cpu_isa_supported(VOX_ISA_AVX512) && __builtin_cpu_supports("avx512bf16");
#endif
    default: return 0;
    }
}

vox_cpu_isa vox_cpu_isa_detect(void) {
    for (int i = VOX_ISA_AVX512BF16; i > VOX_ISA_SCALAR; i--)
        if (vox_cpu_isa_supported((vox_cpu_isa)i)) return (vox_cpu_isa)i;
    return VOX_ISA_SCALAR;
}

const char *vox_cpu_isa_name(vox_cpu_isa isa) {
    switch (isa) {
    case VOX_ISA_SCALAR: return "scalar";
    case VOX_ISA_AVX2: return "avx2";
    case VOX_ISA_AVX512: return "avx512";
    case VOX_ISA_AVX512BF16: return "avx512bf16";
    }
    return "?";
}

vox_cpu_isa vox_cpu_isa_select(void) {
    const char *s = getenv("VOX_ISA");
    if (s && *s) {
        for (int i = VOX_ISA_SCALAR; i <= VOX_ISA_AVX512BF16; i++)
            if (strcmp(s, vox_cpu_isa_name((vox_cpu_isa)i)) == 0 &&
                vox_cpu_isa_supported((vox_cpu_isa)i))
                return (vox_cpu_isa)i;
    }
    return vox_cpu_isa_detect();
}
