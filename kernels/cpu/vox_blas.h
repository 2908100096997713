/* vox_blas.h - OpenBLAS core-type repair and description (ownership: kernels/cpu, helper C).
 *
 * Why: OpenBLAS 0.3.21 (Debian 12) picks its kernels by CPU model at load time and does not
 * know newer CPUs (e.g. family 6 model 207, Emerald Rapids): it falls back to the generic
 * "Prescott" SSE3 kernels, 2.5-4.5x slower than "SkylakeX" on that machine. The choice can only
 * be forced with the environment variable OPENBLAS_CORETYPE, read once when libopenblas loads,
 * i.e. before main() runs. So a program that wants the right kernels must set the variable and
 * execute itself again.
 *
 * vox_blas_ensure_core() does exactly that, and is meant to be the first call in main() of
 * every vox program. It is the only function in libvox that modifies the process environment
 * (OPENBLAS_CORETYPE and the loop guard VOX_BLAS_REEXEC) or replaces the process image; it does
 * so only when called, and only from the main thread before other threads of the program run.
 * Library code never calls it. */
#ifndef VOX_BLAS_H
#define VOX_BLAS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Capability levels, in the order OpenBLAS x86-64 kernels need them. */
enum {
    VOX_BLAS_LEVEL_SSE = 0,   /* SSE2/SSE3 only: Prescott, Core2, Nehalem, Katmai, ... */
    VOX_BLAS_LEVEL_AVX = 1,   /* AVX: Sandybridge, Bulldozer, Piledriver, Steamroller */
    VOX_BLAS_LEVEL_AVX2 = 2,  /* AVX2 + FMA: Haswell, Zen, Excavator */
    VOX_BLAS_LEVEL_AVX512 = 3 /* AVX-512 F/CD/BW/DQ/VL: SkylakeX, Cooperlake, SapphireRapids */
};

/* The level this CPU and OS support (CPUID + XGETBV). */
int vox_blas_cpu_level(void);

/* The level an OpenBLAS core name needs; -1 for a name this table does not know (a newer
 * OpenBLAS than 0.3.21 may report cores we have never heard of: those are left alone). */
int vox_blas_core_level(const char *core_name);

/* The core to force when OpenBLAS chose core_name on a CPU of level cpu_level, or NULL when
 * core_name is right (same level) or unknown, or the CPU has no AVX (nothing is forced there).
 * Upgrades and downgrades (a core the CPU cannot run) both count:
 *   AVX-512 -> "SkylakeX", AVX2 -> "Haswell", AVX -> "Sandybridge". */
const char *vox_blas_pick_core(const char *core_name, int cpu_level);

/* Call first thing in main(). If OPENBLAS_CORETYPE is unset or empty and the core OpenBLAS
 * loaded with (openblas_get_corename) does not match this CPU (vox_blas_pick_core), set
 * OPENBLAS_CORETYPE to the right core, set VOX_BLAS_REEXEC=1 and execv("/proc/self/exe", argv)
 * so the library loads again with it. Returns normally when nothing needs doing. When it cannot
 * re-execute (argv NULL, exec failure, or VOX_BLAS_REEXEC already set, i.e. the forced core did
 * not take), it prints one line to stderr telling the user to set OPENBLAS_CORETYPE=<core> and
 * returns. argv must be main's NULL-terminated argv. Returns 0 when nothing needed doing, 1 when
 * the core is wrong and could not be fixed (after printing the hint). */
int vox_blas_ensure_core(int argc, char **argv);

/* As vox_blas_ensure_core, but pretending OpenBLAS reported assume_core (NULL: ask OpenBLAS).
 * For tests of the re-exec path on machines OpenBLAS detects correctly. */
int vox_blas_ensure_core_as(int argc, char **argv, const char *assume_core);

/* "OpenBLAS <version> core <name>" (e.g. "OpenBLAS 0.3.21 core SkylakeX") into buf; returns
 * buf. For --verbose output and benchmark headers. */
const char *vox_blas_describe(char *buf, size_t n);

/* Set OpenBLAS's own thread count if it differs (it is process-global). */
void vox_blas_set_threads(int n_threads);

#ifdef __cplusplus
}
#endif
#endif /* VOX_BLAS_H */
