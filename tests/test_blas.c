/* test_blas.c - the OpenBLAS core repair (vox_blas.h) and a plain sgemm check.
 *
 * 1. main() calls vox_blas_ensure_core first, as every vox program does. Afterwards the core
 *    OpenBLAS runs must fit the CPU: on a CPU with AVX2 it is not Prescott (or any SSE-only
 *    core), unless the user set OPENBLAS_CORETYPE themselves.
 * 2. The core table: known fallbacks map to the CPU's core, right cores and unknown names are
 *    left alone.
 * 3. The re-exec path, end to end, in child processes of this program (run via /proc/self/exe
 *    with a mode argument): pretending OpenBLAS chose "Prescott", the child must come back with
 *    OPENBLAS_CORETYPE set to the CPU's core, VOX_BLAS_REEXEC=1, and OpenBLAS actually running
 *    that core. With VOX_BLAS_REEXEC already set, it must not exec again (loop guard) and must
 *    print the one-line hint naming OPENBLAS_CORETYPE=<core>.
 * 4. sgemm 256x256x256 (row-major) against a double reference: |C - ref| <= K u sum|a b| with
 *    K = 256 and u = 2^-24, the worst-case bound of a K-term fp32 dot product.
 * 5. vox_blas_describe gives "OpenBLAS <version> core <name>"; a 1024^3 sgemm rate is printed
 *    for information (not checked). */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cpu/vox_blas.h"
#include "vox_common.h"
#include "vox_test.h"

static vox_test_state ts;

/* Child modes (argv[1]); they print one line "rc=<n> core=<name> env=<v> mark=<v>" to stdout. */
static int child_main(const char *mode, int argc, char **argv) {
    int rc = vox_blas_ensure_core_as(argc, argv, "Prescott");
    const char *env = getenv("OPENBLAS_CORETYPE"), *mark = getenv("VOX_BLAS_REEXEC");
    printf("mode=%s rc=%d core=%s env=%s mark=%s\n", mode, rc, openblas_get_corename(),
           env ? env : "", mark ? mark : "");
    return 0;
}

/* Run this program with args, environment changes applied in the child; capture stdout and
 * stderr (each up to n-1 bytes). Returns the exit status or -1. */
static int run_child(const char *mode, int set_mark, char *out, size_t n_out, char *errb,
                     size_t n_err) {
    int po[2], pe[2];
    if (pipe(po) || pipe(pe)) return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]), close(pe[0]), close(po[1]), close(pe[1]);
        unsetenv("OPENBLAS_CORETYPE");
        if (set_mark) setenv("VOX_BLAS_REEXEC", "1", 1);
        else unsetenv("VOX_BLAS_REEXEC");
        char *args[] = {(char *)"test_blas", (char *)mode, NULL};
        execv("/proc/self/exe", args);
        _exit(127);
    }
    close(po[1]), close(pe[1]);
    size_t lo = 0, le = 0;
    /* read both pipes to the end (outputs are one or two short lines, far below pipe size) */
    for (;;) {
        ssize_t k = read(po[0], out + lo, n_out - 1 - lo);
        if (k <= 0) break;
        lo += (size_t)k;
        if (lo + 1 >= n_out) break;
    }
    for (;;) {
        ssize_t k = read(pe[0], errb + le, n_err - 1 - le);
        if (k <= 0) break;
        le += (size_t)k;
        if (le + 1 >= n_err) break;
    }
    out[lo] = '\0';
    errb[le] = '\0';
    close(po[0]), close(pe[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_table(void) {
    VOX_CHECK(&ts, vox_blas_core_level("Prescott") == VOX_BLAS_LEVEL_SSE, "Prescott level");
    VOX_CHECK(&ts, vox_blas_core_level("Zen") == VOX_BLAS_LEVEL_AVX2, "Zen level");
    VOX_CHECK(&ts, vox_blas_core_level("SkylakeX") == VOX_BLAS_LEVEL_AVX512, "SkylakeX level");
    VOX_CHECK(&ts, vox_blas_core_level("NoSuchCore") == -1, "unknown core level");
    struct {
        const char *core;
        int level;
        const char *want;
    } cases[] = {
        {"Prescott", VOX_BLAS_LEVEL_AVX512, "SkylakeX"}, /* the model-207 case */
        {"Prescott", VOX_BLAS_LEVEL_AVX2, "Haswell"},
        {"Core2", VOX_BLAS_LEVEL_AVX2, "Haswell"},
        {"Katmai", VOX_BLAS_LEVEL_AVX512, "SkylakeX"},
        {"Sandybridge", VOX_BLAS_LEVEL_AVX2, "Haswell"},
        {"Haswell", VOX_BLAS_LEVEL_AVX512, "SkylakeX"},
        {"Zen", VOX_BLAS_LEVEL_AVX512, "SkylakeX"},
        {"SkylakeX", VOX_BLAS_LEVEL_AVX2, "Haswell"}, /* a core this CPU cannot run */
        {"Prescott", VOX_BLAS_LEVEL_AVX, "Sandybridge"},
        {"Haswell", VOX_BLAS_LEVEL_AVX2, NULL},
        {"Zen", VOX_BLAS_LEVEL_AVX2, NULL},
        {"SkylakeX", VOX_BLAS_LEVEL_AVX512, NULL},
        {"Cooperlake", VOX_BLAS_LEVEL_AVX512, NULL},
        {"Prescott", VOX_BLAS_LEVEL_SSE, NULL},
        {"SomeFutureCore", VOX_BLAS_LEVEL_AVX2, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = vox_blas_pick_core(cases[i].core, cases[i].level);
        int ok = cases[i].want ? (got && strcmp(got, cases[i].want) == 0) : got == NULL;
        VOX_CHECK(&ts, ok, "pick_core(%s, level %d) = %s, expected %s", cases[i].core,
                  cases[i].level, got ? got : "NULL", cases[i].want ? cases[i].want : "NULL");
    }
}

static void test_reexec(void) {
    int level = vox_blas_cpu_level();
    const char *want = vox_blas_pick_core("Prescott", level);
    if (!want) {
        printf("cpu level %d: nothing to force, re-exec path not testable here\n", level);
        return;
    }
    char out[512], err[1024], expect[256];
    int st = run_child("--child-reexec", 0, out, sizeof out, err, sizeof err);
    snprintf(expect, sizeof expect, "mode=--child-reexec rc=0 core=%s env=%s mark=1\n", want,
             want);
    VOX_CHECK(&ts, st == 0 && strcmp(out, expect) == 0,
              "re-exec child: status %d, output '%s', expected '%s' (stderr '%s')", st, out,
              expect, err);

    st = run_child("--child-guard", 1, out, sizeof out, err, sizeof err);
    char hint[64];
    snprintf(hint, sizeof hint, "OPENBLAS_CORETYPE=%s", want);
    VOX_CHECK(&ts, st == 0 && strstr(out, "rc=1 ") && strstr(out, "env= ") &&
                       strstr(err, hint) && strchr(err, '\n') == err + strlen(err) - 1,
              "loop guard child: status %d, output '%s', stderr '%s'", st, out, err);
}

static void test_sgemm(void) {
    enum { N = 256 };
    float *a = malloc(sizeof(float) * N * N), *b = malloc(sizeof(float) * N * N);
    float *c = malloc(sizeof(float) * N * N);
    uint64_t s = 12345;
    for (int i = 0; i < N * N; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        a[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2 - 1);
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        b[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2 - 1);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, a, N, b, N, 0.0f, c, N);
    int bad = 0;
    double worst = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double ref = 0, mag = 0;
            for (int k = 0; k < N; k++) {
                ref += (double)a[i * N + k] * b[k * N + j];
                mag += fabs((double)a[i * N + k] * b[k * N + j]);
            }
            double err = fabs(c[i * N + j] - ref);
            if (err > worst) worst = err;
            if (err > N * 5.9604644775390625e-8 * mag) bad++;
        }
    VOX_CHECK(&ts, bad == 0, "sgemm 256^3: %d elements beyond K u sum|ab| (max err %.3g)", bad,
              worst);
    printf("sgemm 256^3 max |err| vs double: %.3g\n", worst);
    free(a), free(b), free(c);

    /* information only: the rate that motivated all this */
    int M = 1024;
    float *x = calloc((size_t)M * M, sizeof(float)), *y = calloc((size_t)M * M, sizeof(float));
    float *z = calloc((size_t)M * M, sizeof(float));
    for (int i = 0; i < M * M; i++) x[i] = y[i] = (float)(i % 7) * 0.1f;
    double best = 1e9;
    for (int rep = 0; rep < 4; rep++) {
        double t0 = vox_time_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, M, M, 1.0f, x, M, y, M, 0.0f,
                    z, M);
        double t = vox_time_now() - t0;
        if (t < best) best = t;
    }
    printf("sgemm 1024^3: %.1f GFLOP/s with %d threads\n", 2.0 * M * M * M / best * 1e-9,
           openblas_get_num_threads());
    free(x), free(y), free(z);
}

int main(int argc, char **argv) {
    if (argc > 1 && strncmp(argv[1], "--child-", 8) == 0) return child_main(argv[1], argc, argv);
    int fixed = vox_blas_ensure_core(argc, argv);
    char desc[128];
    vox_blas_describe(desc, sizeof desc);
    const char *core = openblas_get_corename();
    int level = vox_blas_cpu_level();
    const char *user = getenv("OPENBLAS_CORETYPE");
    printf("%s; cpu level %d; OPENBLAS_CORETYPE=%s\n", desc, level, user ? user : "(unset)");
    VOX_CHECK(&ts, strncmp(desc, "OpenBLAS ", 9) == 0 && strstr(desc, " core ") &&
                       strstr(desc, core),
              "describe '%s'", desc);
    VOX_CHECK(&ts, fixed == 0, "ensure_core could not fix the core (%s)", core);

    const char *mark = getenv("VOX_BLAS_REEXEC");
    int user_forced = user && *user && !(mark && *mark); /* the user's choice, not ours */
    if (user_forced) printf("OPENBLAS_CORETYPE set by the user: core checks skipped\n");
    if (level >= VOX_BLAS_LEVEL_AVX2 && !user_forced) {
        VOX_CHECK(&ts, strcmp(core, "Prescott") != 0, "core is still Prescott on an AVX2 CPU");
        VOX_CHECK(&ts, vox_blas_core_level(core) >= VOX_BLAS_LEVEL_AVX2 || vox_blas_core_level(core) < 0,
                  "core %s is below AVX2 on an AVX2 CPU", core);
    }
    test_table();
    test_reexec();
    test_sgemm();
    return vox_test_done(&ts, "test_blas");
}
