/* blas.c - OpenBLAS core-type repair (re-exec with OPENBLAS_CORETYPE) and description.
 * See vox_blas.h for why this exists. */
#include "vox_blas.h"

#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define VOX_BLAS_X86 1
#endif

#define REEXEC_MARK "VOX_BLAS_REEXEC"

#ifdef VOX_BLAS_X86
static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

int vox_blas_cpu_level(void) {
#ifdef VOX_BLAS_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return VOX_BLAS_LEVEL_SSE;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx) return VOX_BLAS_LEVEL_SSE;
    uint64_t xcr0 = read_xcr0();
    if ((xcr0 & 0x6) != 0x6) return VOX_BLAS_LEVEL_SSE; /* OS does not save ymm state */
    unsigned b7 = 0;
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        b7 = b;
    }
    int avx2 = (b7 >> 5) & 1;
    if (!avx2 || !fma) return VOX_BLAS_LEVEL_AVX;
    /* AVX-512 F(16) DQ(17) CD(28) BW(30) VL(31), and the OS saving opmask + zmm (XCR0 5..7) */
    const unsigned need512 = (1u << 16) | (1u << 17) | (1u << 28) | (1u << 30) | (1u << 31);
    if ((b7 & need512) == need512 && (xcr0 & 0xe0) == 0xe0) return VOX_BLAS_LEVEL_AVX512;
    return VOX_BLAS_LEVEL_AVX2;
#else
    return VOX_BLAS_LEVEL_SSE;
#endif
}

/* Core names OpenBLAS 0.3.x reports (openblas_get_corename), by the instruction level their
 * kernels use. */
static const struct {
    const char *name;
    int level;
} core_levels[] = {
    {"Unknown", VOX_BLAS_LEVEL_SSE},     {"Katmai", VOX_BLAS_LEVEL_SSE},
    {"Coppermine", VOX_BLAS_LEVEL_SSE},  {"Northwood", VOX_BLAS_LEVEL_SSE},
    {"Prescott", VOX_BLAS_LEVEL_SSE},    {"Banias", VOX_BLAS_LEVEL_SSE},
    {"Atom", VOX_BLAS_LEVEL_SSE},        {"Core2", VOX_BLAS_LEVEL_SSE},
    {"Penryn", VOX_BLAS_LEVEL_SSE},      {"Dunnington", VOX_BLAS_LEVEL_SSE},
    {"Nehalem", VOX_BLAS_LEVEL_SSE},     {"Athlon", VOX_BLAS_LEVEL_SSE},
    {"Opteron", VOX_BLAS_LEVEL_SSE},     {"Opteron_SSE3", VOX_BLAS_LEVEL_SSE},
    {"Barcelona", VOX_BLAS_LEVEL_SSE},   {"Nano", VOX_BLAS_LEVEL_SSE},
    {"Bobcat", VOX_BLAS_LEVEL_SSE},      {"Sandybridge", VOX_BLAS_LEVEL_AVX},
    {"Bulldozer", VOX_BLAS_LEVEL_AVX},   {"Piledriver", VOX_BLAS_LEVEL_AVX},
    {"Steamroller", VOX_BLAS_LEVEL_AVX}, {"Excavator", VOX_BLAS_LEVEL_AVX2},
    {"Haswell", VOX_BLAS_LEVEL_AVX2},    {"Zen", VOX_BLAS_LEVEL_AVX2},
    {"SkylakeX", VOX_BLAS_LEVEL_AVX512}, {"Cooperlake", VOX_BLAS_LEVEL_AVX512},
    {"SapphireRapids", VOX_BLAS_LEVEL_AVX512},
};

int vox_blas_core_level(const char *core_name) {
    if (!core_name) return -1;
    for (size_t i = 0; i < sizeof core_levels / sizeof core_levels[0]; i++)
        if (strcasecmp(core_name, core_levels[i].name) == 0) return core_levels[i].level;
    return -1;
}

const char *vox_blas_pick_core(const char *core_name, int cpu_level) {
    int have = vox_blas_core_level(core_name);
    if (have < 0 || have == cpu_level) return NULL;
    /* For AVX-512 we force SkylakeX rather than Cooperlake even with avx512_bf16: their sgemm
     * kernels are the same, Debian's build does not export the bf16 GEMM (cblas_sbgemm), and
     * SkylakeX measured at least as fast (build-environment.md section 2). */
    switch (cpu_level) {
    case VOX_BLAS_LEVEL_AVX512: return "SkylakeX";
    case VOX_BLAS_LEVEL_AVX2: return "Haswell";
    case VOX_BLAS_LEVEL_AVX: return "Sandybridge";
    default: return NULL;
    }
}

int vox_blas_ensure_core_as(int argc, char **argv, const char *assume_core) {
    const char *env = getenv("OPENBLAS_CORETYPE");
    if (env && *env) return 0; /* the user (or our earlier self) chose: respect it */
    const char *core = assume_core ? assume_core : openblas_get_corename();
    const char *want = vox_blas_pick_core(core, vox_blas_cpu_level());
    if (!want) return 0;
    const char *mark = getenv(REEXEC_MARK);
    if (argc > 0 && argv && argv[0] && !(mark && *mark)) {
        if (setenv("OPENBLAS_CORETYPE", want, 1) == 0 && setenv(REEXEC_MARK, "1", 1) == 0) {
            fflush(stdout);
            fflush(stderr);
            execv("/proc/self/exe", argv);
        }
        /* exec failed: undo, so children of this process are not misled */
        unsetenv("OPENBLAS_CORETYPE");
        unsetenv(REEXEC_MARK);
    }
    fprintf(stderr,
            "vox: OpenBLAS chose its '%s' kernels, which do not fit this CPU; run with "
            "OPENBLAS_CORETYPE=%s for matrix products 2-4x faster\n",
            core ? core : "?", want);
    return 1;
}

int vox_blas_ensure_core(int argc, char **argv) {
    return vox_blas_ensure_core_as(argc, argv, NULL);
}

const char *vox_blas_describe(char *buf, size_t n) {
    if (!buf || n == 0) return buf;
    const char *cfg = openblas_get_config();
    const char *core = openblas_get_corename();
    char ver[64] = "";
    /* the config string starts "OpenBLAS <version> <build flags...>" */
    if (cfg && strncmp(cfg, "OpenBLAS ", 9) == 0) {
        size_t i = 0;
        const char *p = cfg + 9;
        while (p[i] && p[i] != ' ' && i + 1 < sizeof ver) {
            ver[i] = p[i];
            i++;
        }
        ver[i] = '\0';
    }
    snprintf(buf, n, "OpenBLAS %s core %s", ver[0] ? ver : "?", core ? core : "?");
    return buf;
}

void vox_blas_set_threads(int n_threads) {
    if (n_threads >= 1 && openblas_get_num_threads() != n_threads)
        openblas_set_num_threads(n_threads);
}
