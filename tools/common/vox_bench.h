/* vox_bench.h - measuring helpers shared by the bench/ programs (not part of libvox).
 *
 * The yardstick every benchmark compares against is the read bandwidth measured in the same run:
 * the pool's workers stream contiguous parts of a slice through an AVX2 sum with the same 8 KiB
 * software prefetch as the matvec kernel, each call a different cold slice of a large buffer,
 * and the median time is kept. */
#ifndef VOX_BENCH_H
#define VOX_BENCH_H

#include <stddef.h>

#include "cpu/vox_cpu.h"
#include "vox_safetensors.h"

/* Median of v[0..n-1] (sorts v). */
double vox_bench_median(double *v, int n);

/* Median seconds to read one `slice`-byte slice of buf, cycling through `total` bytes (after one
 * warm-up pass over all slices), over `calls` calls. */
double vox_bench_read_slice_time(vox_pool *pool, const float *buf, size_t total, size_t slice,
                                 int calls);

/* Read bandwidth in bytes/s with `threads` threads over a fresh buffer of `bytes` (>= 2 GiB to
 * defeat the L3), 64 MiB slices, median of `calls`. 0 on allocation failure. */
double vox_bench_read_bw(int threads, size_t bytes, int calls);

/* Bytes of the tensors of f whose names start with prefix (as stored). */
double vox_bench_st_bytes(const vox_st_file *f, const char *prefix);

/* Bytes the codec decoder reads per vox_codec_decode call (every decoder weight once): the
 * linear and norm tensors of `prefix`decoder_blocks.* / output_proj.* as stored (the CPU
 * backend reads BF16 straight from the mapping) and the weight-normed conv weights
 * (parametrizations.weight.original1) as the fp32 copies codec/ folds them into at load; the
 * folded-away g vectors (original0) and the quantizer (looked up on the host) are not counted.
 * prefix: "audio_tokenizer." in a TTS checkpoint. */
double vox_bench_codec_decoder_bytes(const vox_st_file *f, const char *prefix);

#endif /* VOX_BENCH_H */
