/* vox_test.h - a tiny assertion helper for the C test programs.
 *
 * Each test program counts checks and failures and ends with vox_test_done(), which prints
 * "N passed, M failed" and returns the exit code for ctest. Tolerances are always stated at
 * the call site. */
#ifndef VOX_TEST_H
#define VOX_TEST_H

#include <math.h>
#include <stdio.h>

typedef struct vox_test_state {
    int passed;
    int failed;
} vox_test_state;

#define VOX_CHECK(ts, cond, ...)                                                                   \
    do {                                                                                           \
        if (cond) {                                                                                \
            (ts)->passed++;                                                                        \
        } else {                                                                                   \
            (ts)->failed++;                                                                        \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                 \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

static inline int vox_test_done(const vox_test_state *ts, const char *name) {
    printf("%s: %d passed, %d failed\n", name, ts->passed, ts->failed);
    return ts->failed ? 1 : 0;
}

#endif
