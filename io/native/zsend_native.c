/*
 * zsend_native: the small native helper library of zsend, loaded through Deno FFI.
 *
 *   - fletcher-4 over 32-bit words read little-endian (native on x86-64) or big-endian
 *     (byteswapped), vectorised with SSE2 / AVX2 / AVX-512 and chosen at run time;
 *   - positional I/O on files and block devices (open, size, pread, pwrite, fsync, close);
 *   - sendfile: bytes of a file to another file, pipe or socket without a copy through the
 *     process (send's payloads, whose checksums the store already holds).
 *
 * Everything here has a pure-TypeScript twin that gives identical results; see
 * io/native/ffi.ts, io/native/fletcher4_native.ts and io/native/device.ts.
 *
 * Build: scripts/build_native.sh (cc -O3 -fPIC -shared; no -march=native: the SIMD variants
 * are compiled with per-function target attributes and picked with __builtin_cpu_supports).
 *
 * ---------------------------------------------------------------------------------------------
 * How the SIMD lanes are folded back into the scalar state
 * ---------------------------------------------------------------------------------------------
 * fletcher-4 over words x_1..x_n from the state (A, B, C, D) is, mod 2^64,
 *
 *   a = A + sum x_i
 *   b = B + n A             + sum (n-i+1) x_i
 *   c = C + n B + T2(n) A   + sum C(n-i+2, 2) x_i                 T2(n) = C(n+1, 2)
 *   d = D + n C + T2(n) B + T3(n) A + sum C(n-i+3, 3) x_i          T3(n) = C(n+2, 3)
 *
 * (each step adds the new a to b, the new b to c, the new c to d; induction on n).
 *
 * The vector code splits n = m N words into N lanes: lane j (0 <= j < N) runs its own
 * fletcher-4, from zero, over the words x_{j+1}, x_{j+1+N}, x_{j+1+2N}, ... (m words). Write
 * r = m - k + 1 for the lane's k-th word (so r runs m..1, the "distance from the end" within
 * the lane); the lane's sums are
 *
 *   a_j = sum y,  b_j = sum r y,  c_j = sum C(r+1, 2) y,  d_j = sum C(r+2, 3) y.
 *
 * That word is x_i with i = (k-1) N + j + 1, so n - i + 1 = N r - j =: t. The full-stream
 * weights are polynomials in r of degree 1, 2, 3:
 *
 *   t                                        = N r - j
 *   C(t+1, 2) = (N r - j + 1)(N r - j) / 2
 *   C(t+2, 3) = (N r - j + 2)(N r - j + 1)(N r - j) / 6
 *
 * and each is a unique combination of the lane's basis 1, r, C(r+1,2), C(r+2,3). Matching
 * leading coefficients, then evaluating at r = 0, -1, -2 (where the basis is (1,0,0,0),
 * (1,-1,0,0), (1,-2,1,0)), and writing B(x, k) for the binomial coefficient extended to all
 * integers x (B(-x, 2) = B(x+1, 2), B(-x, 3) = -B(x+2, 3)):
 *
 *   t         = N r - j
 *   C(t+1, 2) = N^2 C(r+1,2) + (B(j,2) - B(N+j,2)) r + B(j,2)
 *   C(t+2, 3) = N^3 C(r+2,3) + (2 g1 - g0 - B(2N+j,3)) C(r+1,2) + g1 r + g0
 *               where g0 = -B(j,3), g1 = B(N+j,3) - B(j,3)
 *
 * so the block's own contribution is
 *
 *   a' = sum_j a_j
 *   b' = sum_j (N b_j - j a_j)
 *   c' = sum_j (N^2 c_j + (B(j,2) - B(N+j,2)) b_j + B(j,2) a_j)
 *   d' = sum_j (N^3 d_j + (2 g1 - g0 - B(2N+j,3)) c_j + g1 b_j + g0 a_j)
 *
 * and the new state is the first display with the sums replaced by a', b', c', d'. All of it
 * is linear, so it is exact mod 2^64 whatever the lanes wrapped to.
 *
 * In the code: lane_coeffs() tabulates the per-lane coefficients once, at load time; each
 * kernel multiplies its lane registers by those tables (vpmullq on AVX-512, 32 x 32-bit
 * products on SSE2 / AVX2), adds the lanes horizontally, and finish() applies the state terms.
 * Words before the first 64-byte boundary (when the buffer is 4-byte aligned), the words left
 * over (n mod N), and buffers under 128 bytes go through the scalar loop.
 * tests/fletcher4_test.ts checks every variant against the TypeScript implementation and a
 * BigInt reference.
 */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/fs.h> /* BLKGETSIZE64 */
#include <poll.h>
#include <sys/sendfile.h>
#endif

#if defined(__x86_64__)
#define ZS_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

#define ZS_EXPORT __attribute__((visibility("default")))

/* ------------------------------------------------------------------------------------------ */
/* fletcher-4: scalar core                                                                    */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  uint64_t a, b, c, d;
} zs_f4;

static inline uint32_t load_le32(const uint8_t *p) {
  uint32_t w;
  memcpy(&w, p, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  w = __builtin_bswap32(w);
#endif
  return w;
}

static inline uint32_t load_be32(const uint8_t *p) {
  uint32_t w;
  memcpy(&w, p, 4);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  w = __builtin_bswap32(w);
#endif
  return w;
}

static void scalar_le(zs_f4 *s, const uint8_t *p, uint64_t nwords) {
  uint64_t a = s->a, b = s->b, c = s->c, d = s->d;
  for (uint64_t i = 0; i < nwords; i++, p += 4) {
    a += load_le32(p);
    b += a;
    c += b;
    d += c;
  }
  s->a = a, s->b = b, s->c = c, s->d = d;
}

static void scalar_be(zs_f4 *s, const uint8_t *p, uint64_t nwords) {
  uint64_t a = s->a, b = s->b, c = s->c, d = s->d;
  for (uint64_t i = 0; i < nwords; i++, p += 4) {
    a += load_be32(p);
    b += a;
    c += b;
    d += c;
  }
  s->a = a, s->b = b, s->c = c, s->d = d;
}

/* T2(n) = C(n+1, 2) and T3(n) = C(n+2, 3) mod 2^64 for any n (divide before multiplying). */
static uint64_t tri2(uint64_t n) {
  uint64_t x = n, y = n + 1;
  if (x % 2 == 0) x /= 2; else y /= 2;
  return x * y;
}

static uint64_t tri3(uint64_t n) {
  uint64_t f[3] = {n, n + 1, n + 2};
  for (int i = 0; i < 3; i++)
    if (f[i] % 3 == 0) { f[i] /= 3; break; }
  for (int i = 0; i < 3; i++)
    if (f[i] % 2 == 0) { f[i] /= 2; break; }
  return f[0] * f[1] * f[2];
}

#ifdef ZS_X86 /* the rest of the fletcher-4 section is only for the vector kernels */

/* ------------------------------------------------------------------------------------------ */
/* Lane combination                                                                           */
/* ------------------------------------------------------------------------------------------ */

/* The binomial coefficient B(x, k) for small integers x (any sign), k = 2 or 3, exact. */
static int64_t binom2(int64_t x) { return x * (x - 1) / 2; }
static int64_t binom3(int64_t x) { return x * (x - 1) * (x - 2) / 6; }

/*
 * Per-lane coefficients of the combination (see the top of the file), for lane j of N; the
 * N, N^2, N^3 factors are the same for every lane and applied to the lane sums instead:
 *
 *   b' = N   sum b_j + sum K_BA a_j
 *   c' = N^2 sum c_j + sum (K_CB b_j + K_CA a_j)
 *   d' = N^3 sum d_j + sum (K_DC c_j + K_DB b_j + K_DA a_j)
 *
 * Tables are laid out [coefficient][lane], lanes in register order.
 */
enum { K_BA, K_CB, K_CA, K_DC, K_DB, K_DA, K_COUNT };

static void lane_coeffs(uint64_t *table, unsigned nlanes, unsigned lane, int64_t j) {
  const int64_t N = nlanes;
  const uint64_t g0 = (uint64_t)(-binom3(j));
  const uint64_t g1 = (uint64_t)(binom3(N + j) - binom3(j));
  table[K_BA * nlanes + lane] = (uint64_t)(-j);
  table[K_CB * nlanes + lane] = (uint64_t)(binom2(j) - binom2(N + j));
  table[K_CA * nlanes + lane] = (uint64_t)binom2(j);
  table[K_DC * nlanes + lane] = 2 * g1 - g0 - (uint64_t)binom3(2 * N + j);
  table[K_DB * nlanes + lane] = g1;
  table[K_DA * nlanes + lane] = g0;
}

/* Applies the folded sums a'..d' of n = N m words to the state (the first display above). */
static void finish(zs_f4 *s, uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t n) {
  const uint64_t t2 = tri2(n), t3 = tri3(n);
  const uint64_t A = s->a, B = s->b, C = s->c, D = s->d;
  s->a = A + a;
  s->b = B + n * A + b;
  s->c = C + n * B + t2 * A + c;
  s->d = D + n * C + t2 * B + t3 * A + d;
}

/*
 * All vector variants read V consecutive pairs of words (w_2k, w_2k+1) into the V 64-bit lanes
 * of a register and split it into an "even" register (low halves: words 0, 2, 4, ... of the
 * block) and an "odd" one (high halves: words 1, 3, 5, ...); byteswapped input takes a byte
 * shuffle that swaps and zero-extends in one step. So N = 2 V, and lane k of the even register
 * is j = 2k, of the odd register j = 2k + 1.
 */
static void fill_coeffs(uint64_t *table, unsigned V) {
  for (unsigned k = 0; k < V; k++) {
    lane_coeffs(table, 2 * V, k, 2 * k);         /* even register */
    lane_coeffs(table, 2 * V, V + k, 2 * k + 1); /* odd register */
  }
}

/* ------------------------------------------------------------------------------------------ */
/* SSE2: 2 x u64 lanes per register (N = 4 words per step)                                    */
/* ------------------------------------------------------------------------------------------ */

#define SSE_N 4
static uint64_t sse2_k[K_COUNT * SSE_N];

#define TGT_SSE2 __attribute__((target("sse2"), always_inline)) static inline

/* Byteswaps each 32-bit word (SSE2 has no byte shuffle). */
TGT_SSE2 __m128i bswap32_sse2(__m128i x) {
  x = _mm_or_si128(_mm_slli_epi32(x, 16), _mm_srli_epi32(x, 16));
  const __m128i m = _mm_set1_epi32(0x00ff00ff);
  return _mm_or_si128(_mm_slli_epi32(_mm_and_si128(x, m), 8),
                      _mm_and_si128(_mm_srli_epi32(x, 8), m));
}

/* x * y mod 2^64 per lane, from 32 x 32 -> 64-bit products. */
TGT_SSE2 __m128i mul64_sse2(__m128i x, __m128i y) {
  const __m128i ll = _mm_mul_epu32(x, y);
  const __m128i hl = _mm_mul_epu32(_mm_srli_epi64(x, 32), y);
  const __m128i lh = _mm_mul_epu32(x, _mm_srli_epi64(y, 32));
  return _mm_add_epi64(ll, _mm_slli_epi64(_mm_add_epi64(hl, lh), 32));
}

TGT_SSE2 uint64_t hsum_sse2(__m128i x) {
  return (uint64_t)_mm_cvtsi128_si64(_mm_add_epi64(x, _mm_unpackhi_epi64(x, x)));
}

#define K_SSE2(c, r) _mm_loadu_si128((const __m128i *)(sse2_k + (c) * SSE_N + 2 * (r)))

TGT_SSE2 void sse2_kernel(zs_f4 *s, const uint8_t *p, uint64_t m, const int swap) {
  const __m128i lo = _mm_set1_epi64x(0xffffffffLL);
  __m128i a0 = _mm_setzero_si128(), b0 = a0, c0 = a0, d0 = a0;
  __m128i a1 = a0, b1 = a0, c1 = a0, d1 = a0;
  for (uint64_t it = 0; it < m; it++, p += 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    if (swap) v = bswap32_sse2(v);
    a0 = _mm_add_epi64(a0, _mm_and_si128(v, lo));
    a1 = _mm_add_epi64(a1, _mm_srli_epi64(v, 32));
    b0 = _mm_add_epi64(b0, a0);
    b1 = _mm_add_epi64(b1, a1);
    c0 = _mm_add_epi64(c0, b0);
    c1 = _mm_add_epi64(c1, b1);
    d0 = _mm_add_epi64(d0, c0);
    d1 = _mm_add_epi64(d1, c1);
  }
  /* N = 4: the N powers are shifts by 2, 4, 6. */
  const __m128i A = _mm_add_epi64(a0, a1);
  __m128i B = _mm_slli_epi64(_mm_add_epi64(b0, b1), 2);
  B = _mm_add_epi64(B, mul64_sse2(a0, K_SSE2(K_BA, 0)));
  B = _mm_add_epi64(B, mul64_sse2(a1, K_SSE2(K_BA, 1)));
  __m128i C = _mm_slli_epi64(_mm_add_epi64(c0, c1), 4);
  C = _mm_add_epi64(C, mul64_sse2(b0, K_SSE2(K_CB, 0)));
  C = _mm_add_epi64(C, mul64_sse2(b1, K_SSE2(K_CB, 1)));
  C = _mm_add_epi64(C, mul64_sse2(a0, K_SSE2(K_CA, 0)));
  C = _mm_add_epi64(C, mul64_sse2(a1, K_SSE2(K_CA, 1)));
  __m128i D = _mm_slli_epi64(_mm_add_epi64(d0, d1), 6);
  D = _mm_add_epi64(D, mul64_sse2(c0, K_SSE2(K_DC, 0)));
  D = _mm_add_epi64(D, mul64_sse2(c1, K_SSE2(K_DC, 1)));
  D = _mm_add_epi64(D, mul64_sse2(b0, K_SSE2(K_DB, 0)));
  D = _mm_add_epi64(D, mul64_sse2(b1, K_SSE2(K_DB, 1)));
  D = _mm_add_epi64(D, mul64_sse2(a0, K_SSE2(K_DA, 0)));
  D = _mm_add_epi64(D, mul64_sse2(a1, K_SSE2(K_DA, 1)));
  finish(s, hsum_sse2(A), hsum_sse2(B), hsum_sse2(C), hsum_sse2(D), m * SSE_N);
}

__attribute__((target("sse2"))) static void sse2_le(zs_f4 *s, const uint8_t *p, uint64_t m) {
  sse2_kernel(s, p, m, 0);
}
__attribute__((target("sse2"))) static void sse2_be(zs_f4 *s, const uint8_t *p, uint64_t m) {
  sse2_kernel(s, p, m, 1);
}

/*
 * Bytes ahead to prefetch in the AVX loops: the hardware prefetcher stops at each 4 KiB page,
 * and a mapped file's pages lie anywhere in memory, so without it each page starts with cache
 * misses (measured: fletcher-4 over a 1 GB mapped file, a quarter less user time).
 */
#define PREFETCH_AHEAD 2048

/* ------------------------------------------------------------------------------------------ */
/* AVX2: 4 x u64 lanes per register (N = 8 words per step)                                    */
/* ------------------------------------------------------------------------------------------ */

#define AVX2_N 8
static uint64_t avx2_k[K_COUNT * AVX2_N];

#define TGT_AVX2 __attribute__((target("avx2"), always_inline)) static inline

TGT_AVX2 __m256i mul64_avx2(__m256i x, __m256i y) {
  const __m256i ll = _mm256_mul_epu32(x, y);
  const __m256i hl = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), y);
  const __m256i lh = _mm256_mul_epu32(x, _mm256_srli_epi64(y, 32));
  return _mm256_add_epi64(ll, _mm256_slli_epi64(_mm256_add_epi64(hl, lh), 32));
}

TGT_AVX2 uint64_t hsum_avx2(__m256i x) {
  const __m128i h = _mm_add_epi64(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
  return (uint64_t)_mm_cvtsi128_si64(_mm_add_epi64(h, _mm_unpackhi_epi64(h, h)));
}

#define K_AVX2(c, r) _mm256_loadu_si256((const __m256i *)(avx2_k + (c) * AVX2_N + 4 * (r)))

TGT_AVX2 void avx2_kernel(zs_f4 *s, const uint8_t *p, uint64_t m, const int swap) {
  const __m256i lo = _mm256_set1_epi64x(0xffffffffLL);
  /* Byte shuffles that byteswap the even (odd) words of each 16 bytes into zero-extended u64s;
   * index 0x80 writes a zero. */
  const __m256i sh_e = _mm256_setr_epi8(3, 2, 1, 0, -128, -128, -128, -128, 11, 10, 9, 8, -128,
                                        -128, -128, -128, 3, 2, 1, 0, -128, -128, -128, -128, 11,
                                        10, 9, 8, -128, -128, -128, -128);
  const __m256i sh_o = _mm256_setr_epi8(7, 6, 5, 4, -128, -128, -128, -128, 15, 14, 13, 12,
                                        -128, -128, -128, -128, 7, 6, 5, 4, -128, -128, -128,
                                        -128, 15, 14, 13, 12, -128, -128, -128, -128);
  __m256i a0 = _mm256_setzero_si256(), b0 = a0, c0 = a0, d0 = a0;
  __m256i a1 = a0, b1 = a0, c1 = a0, d1 = a0;
  for (uint64_t it = 0; it < m; it++, p += 32) {
    __builtin_prefetch(p + PREFETCH_AHEAD);
    const __m256i v = _mm256_loadu_si256((const __m256i *)p);
    __m256i e, o;
    if (swap) {
      e = _mm256_shuffle_epi8(v, sh_e);
      o = _mm256_shuffle_epi8(v, sh_o);
    } else {
      e = _mm256_and_si256(v, lo);
      o = _mm256_srli_epi64(v, 32);
    }
    a0 = _mm256_add_epi64(a0, e);
    a1 = _mm256_add_epi64(a1, o);
    b0 = _mm256_add_epi64(b0, a0);
    b1 = _mm256_add_epi64(b1, a1);
    c0 = _mm256_add_epi64(c0, b0);
    c1 = _mm256_add_epi64(c1, b1);
    d0 = _mm256_add_epi64(d0, c0);
    d1 = _mm256_add_epi64(d1, c1);
  }
  /* N = 8: the N powers are shifts by 3, 6, 9. */
  const __m256i A = _mm256_add_epi64(a0, a1);
  __m256i B = _mm256_slli_epi64(_mm256_add_epi64(b0, b1), 3);
  B = _mm256_add_epi64(B, mul64_avx2(a0, K_AVX2(K_BA, 0)));
  B = _mm256_add_epi64(B, mul64_avx2(a1, K_AVX2(K_BA, 1)));
  __m256i C = _mm256_slli_epi64(_mm256_add_epi64(c0, c1), 6);
  C = _mm256_add_epi64(C, mul64_avx2(b0, K_AVX2(K_CB, 0)));
  C = _mm256_add_epi64(C, mul64_avx2(b1, K_AVX2(K_CB, 1)));
  C = _mm256_add_epi64(C, mul64_avx2(a0, K_AVX2(K_CA, 0)));
  C = _mm256_add_epi64(C, mul64_avx2(a1, K_AVX2(K_CA, 1)));
  __m256i D = _mm256_slli_epi64(_mm256_add_epi64(d0, d1), 9);
  D = _mm256_add_epi64(D, mul64_avx2(c0, K_AVX2(K_DC, 0)));
  D = _mm256_add_epi64(D, mul64_avx2(c1, K_AVX2(K_DC, 1)));
  D = _mm256_add_epi64(D, mul64_avx2(b0, K_AVX2(K_DB, 0)));
  D = _mm256_add_epi64(D, mul64_avx2(b1, K_AVX2(K_DB, 1)));
  D = _mm256_add_epi64(D, mul64_avx2(a0, K_AVX2(K_DA, 0)));
  D = _mm256_add_epi64(D, mul64_avx2(a1, K_AVX2(K_DA, 1)));
  const uint64_t sa = hsum_avx2(A), sb = hsum_avx2(B), sc = hsum_avx2(C), sd = hsum_avx2(D);
  _mm256_zeroupper(); /* GCC does not insert it here; legacy SSE code would pay for dirty state */
  finish(s, sa, sb, sc, sd, m * AVX2_N);
}

__attribute__((target("avx2"))) static void avx2_le(zs_f4 *s, const uint8_t *p, uint64_t m) {
  avx2_kernel(s, p, m, 0);
}
__attribute__((target("avx2"))) static void avx2_be(zs_f4 *s, const uint8_t *p, uint64_t m) {
  avx2_kernel(s, p, m, 1);
}

/* ------------------------------------------------------------------------------------------ */
/* AVX-512 (F, BW for the byte shuffle, DQ for the 64-bit multiply): 8 x u64 lanes (N = 16)   */
/* ------------------------------------------------------------------------------------------ */

#define AVX512_N 16
static uint64_t avx512_k[K_COUNT * AVX512_N];

#define TGT_AVX512                                                                             \
  __attribute__((target("avx512f,avx512bw,avx512dq"), always_inline)) static inline

/* Shuffle controls as 64-bit constants: bytes 0..7 / 8..15 of each 16-byte block. */
#define SH_EVEN_LO 0x8080808000010203LL
#define SH_EVEN_HI 0x8080808008090a0bLL
#define SH_ODD_LO 0x8080808004050607LL
#define SH_ODD_HI 0x808080800c0d0e0fLL

#define K_AVX512(c, r) _mm512_loadu_si512((const void *)(avx512_k + (c) * AVX512_N + 8 * (r)))

TGT_AVX512 void avx512_kernel(zs_f4 *s, const uint8_t *p, uint64_t m, const int swap) {
  const __m512i lo = _mm512_set1_epi64(0xffffffffLL);
  const __m512i sh_e = _mm512_set_epi64(SH_EVEN_HI, SH_EVEN_LO, SH_EVEN_HI, SH_EVEN_LO,
                                        SH_EVEN_HI, SH_EVEN_LO, SH_EVEN_HI, SH_EVEN_LO);
  const __m512i sh_o = _mm512_set_epi64(SH_ODD_HI, SH_ODD_LO, SH_ODD_HI, SH_ODD_LO, SH_ODD_HI,
                                        SH_ODD_LO, SH_ODD_HI, SH_ODD_LO);
  __m512i a0 = _mm512_setzero_si512(), b0 = a0, c0 = a0, d0 = a0;
  __m512i a1 = a0, b1 = a0, c1 = a0, d1 = a0;
  for (uint64_t it = 0; it < m; it++, p += 64) {
    __builtin_prefetch(p + PREFETCH_AHEAD);
    const __m512i v = _mm512_loadu_si512((const void *)p);
    __m512i e, o;
    if (swap) {
      e = _mm512_shuffle_epi8(v, sh_e);
      o = _mm512_shuffle_epi8(v, sh_o);
    } else {
      e = _mm512_and_si512(v, lo);
      o = _mm512_srli_epi64(v, 32);
    }
    a0 = _mm512_add_epi64(a0, e);
    a1 = _mm512_add_epi64(a1, o);
    b0 = _mm512_add_epi64(b0, a0);
    b1 = _mm512_add_epi64(b1, a1);
    c0 = _mm512_add_epi64(c0, b0);
    c1 = _mm512_add_epi64(c1, b1);
    d0 = _mm512_add_epi64(d0, c0);
    d1 = _mm512_add_epi64(d1, c1);
  }
  /* N = 16: the N powers are shifts by 4, 8, 12. */
  const __m512i A = _mm512_add_epi64(a0, a1);
  __m512i B = _mm512_slli_epi64(_mm512_add_epi64(b0, b1), 4);
  B = _mm512_add_epi64(B, _mm512_mullo_epi64(a0, K_AVX512(K_BA, 0)));
  B = _mm512_add_epi64(B, _mm512_mullo_epi64(a1, K_AVX512(K_BA, 1)));
  __m512i C = _mm512_slli_epi64(_mm512_add_epi64(c0, c1), 8);
  C = _mm512_add_epi64(C, _mm512_mullo_epi64(b0, K_AVX512(K_CB, 0)));
  C = _mm512_add_epi64(C, _mm512_mullo_epi64(b1, K_AVX512(K_CB, 1)));
  C = _mm512_add_epi64(C, _mm512_mullo_epi64(a0, K_AVX512(K_CA, 0)));
  C = _mm512_add_epi64(C, _mm512_mullo_epi64(a1, K_AVX512(K_CA, 1)));
  __m512i D = _mm512_slli_epi64(_mm512_add_epi64(d0, d1), 12);
  D = _mm512_add_epi64(D, _mm512_mullo_epi64(c0, K_AVX512(K_DC, 0)));
  D = _mm512_add_epi64(D, _mm512_mullo_epi64(c1, K_AVX512(K_DC, 1)));
  D = _mm512_add_epi64(D, _mm512_mullo_epi64(b0, K_AVX512(K_DB, 0)));
  D = _mm512_add_epi64(D, _mm512_mullo_epi64(b1, K_AVX512(K_DB, 1)));
  D = _mm512_add_epi64(D, _mm512_mullo_epi64(a0, K_AVX512(K_DA, 0)));
  D = _mm512_add_epi64(D, _mm512_mullo_epi64(a1, K_AVX512(K_DA, 1)));
  const uint64_t sa = (uint64_t)_mm512_reduce_add_epi64(A);
  const uint64_t sb = (uint64_t)_mm512_reduce_add_epi64(B);
  const uint64_t sc = (uint64_t)_mm512_reduce_add_epi64(C);
  const uint64_t sd = (uint64_t)_mm512_reduce_add_epi64(D);
  _mm256_zeroupper(); /* as in avx2_kernel */
  finish(s, sa, sb, sc, sd, m * AVX512_N);
}

__attribute__((target("avx512f,avx512bw,avx512dq"))) static void avx512_le(zs_f4 *s,
                                                                           const uint8_t *p,
                                                                           uint64_t m) {
  avx512_kernel(s, p, m, 0);
}
__attribute__((target("avx512f,avx512bw,avx512dq"))) static void avx512_be(zs_f4 *s,
                                                                           const uint8_t *p,
                                                                           uint64_t m) {
  avx512_kernel(s, p, m, 1);
}

#endif /* ZS_X86 */

/* ------------------------------------------------------------------------------------------ */
/* Dispatch                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* A vector kernel folds m blocks of `words` words (m * words in all) into the state. */
typedef void (*zs_kernel)(zs_f4 *s, const uint8_t *p, uint64_t m);

typedef struct {
  const char *name;
  zs_kernel le, be; /* NULL for the plain scalar loop */
  unsigned words;   /* words per block (lanes) */
  int (*supported)(void);
} zs_impl;

static int always(void) { return 1; }
#ifdef ZS_X86
static int has_sse2(void) { return __builtin_cpu_supports("sse2"); }
static int has_avx2(void) { return __builtin_cpu_supports("avx2"); }
static int has_avx512(void) {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq");
}
#endif

/* Best first. */
static const zs_impl impls[] = {
#ifdef ZS_X86
    {"avx512", avx512_le, avx512_be, AVX512_N, has_avx512},
    {"avx2", avx2_le, avx2_be, AVX2_N, has_avx2},
    {"sse2", sse2_le, sse2_be, SSE_N, has_sse2},
#endif
    {"scalar", NULL, NULL, 1, always},
};
#define NIMPLS (sizeof impls / sizeof impls[0])

static const zs_impl *current;

static const zs_impl *best_impl(void) {
#ifdef ZS_X86
  __builtin_cpu_init();
#endif
  for (unsigned i = 0; i < NIMPLS; i++)
    if (impls[i].supported()) return &impls[i];
  return &impls[NIMPLS - 1];
}

/* Runs when the library is loaded. */
__attribute__((constructor)) static void zs_init(void) {
#ifdef ZS_X86
  fill_coeffs(sse2_k, SSE_N / 2);
  fill_coeffs(avx2_k, AVX2_N / 2);
  fill_coeffs(avx512_k, AVX512_N / 2);
#endif
  current = best_impl();
}

#define VECTOR_MIN_WORDS 32

static void fletcher4_f4(zs_f4 *state, const uint8_t *buf, uint64_t len, int big_endian) {
  if (!current) zs_init();
  const zs_impl *impl = current;
  uint64_t nwords = len / 4;
  if (nwords == 0) return;
  zs_f4 s = *state;
  /*
   * Misaligned 64-byte loads straddle two cache lines, which costs ~25% when streaming from
   * memory: when the words can be aligned at all, run the first few through the scalar loop.
   */
  const uintptr_t mis = (uintptr_t)buf & 63;
  if (impl->le && nwords >= 16 + impl->words && mis != 0 && (mis & 3) == 0) {
    const uint64_t k = (64 - mis) / 4;
    (big_endian ? scalar_be : scalar_le)(&s, buf, k);
    buf += 4 * k;
    nwords -= k;
  }
  /* Below ~128 bytes the lane set-up and combination cost more than the scalar loop. */
  const uint64_t m = impl->le && nwords >= VECTOR_MIN_WORDS ? nwords / impl->words : 0;
  if (m > 0) {
    (big_endian ? impl->be : impl->le)(&s, buf, m);
    buf += m * impl->words * 4;
    nwords -= m * impl->words;
  }
  (big_endian ? scalar_be : scalar_le)(&s, buf, nwords);
  *state = s;
}

static void fletcher4(uint64_t *state, const uint8_t *buf, uint64_t len, int big_endian) {
  zs_f4 s;
  memcpy(&s, state, sizeof s); /* the state may be only 4-byte aligned */
  fletcher4_f4(&s, buf, len, big_endian);
  memcpy(state, &s, sizeof s);
}

/*
 * The exported fletcher-4 entry points take a 32-bit length: Deno FFI passes a u64 argument as
 * a BigInt, which costs an allocation and a slower call path on every call (measured ~34 ns
 * against ~23 ns per call), and a send stream is checksummed in many small pieces (every
 * 312-byte record header). Callers split larger buffers at word boundaries (the state carries
 * over exactly).
 */

static int page_sums_fold(zs_f4 *s, const uint8_t *buf, uint64_t len);

/**
 * Folds the native-order 32-bit words of buf[0..len) into state[4]; trailing bytes ignored.
 * Inside a mapped window whose pages the prefetch thread has already summed, those pages are
 * folded in from their sums (see page sums below): the same result, without reading them.
 */
ZS_EXPORT void zs_fletcher4_native(uint64_t *state, const uint8_t *buf, uint32_t len) {
  zs_f4 s;
  memcpy(&s, state, sizeof s);
  if (!page_sums_fold(&s, buf, len))
    fletcher4_f4(&s, buf, len, __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__);
  memcpy(state, &s, sizeof s);
}

/** The same over byteswapped words (big-endian words on x86-64). */
ZS_EXPORT void zs_fletcher4_byteswap(uint64_t *state, const uint8_t *buf, uint32_t len) {
  fletcher4(state, buf, len, __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__);
}

/*
 * The fletcher-4 of each whole block of bs bytes in buf[0..len), each from zero over
 * little-endian words, into out[4 i .. 4 i + 3] (an image's blocks, checksummed in one call per
 * chunk read). An all-zero block has a == 0, and only it: a is the exact sum of the words.
 */
ZS_EXPORT void zs_fletcher4_blocks(uint64_t *out, const uint8_t *buf, uint32_t len, uint32_t bs) {
  if (bs == 0) return;
  for (uint32_t off = 0, i = 0; len - off >= bs; off += bs, i++) {
    uint64_t s[4] = {0, 0, 0, 0};
    fletcher4(s, buf + off, bs, 0);
    memcpy(out + 4 * (uint64_t)i, s, sizeof s);
  }
}

/*
 * Folds in len bytes that the state has not seen from their own fletcher-4 ck (from zero):
 * the same result as folding the bytes (the first display at the top of the file, with the
 * sums replaced by ck), as Fletcher4.append in core/fletcher4.ts.
 */
static void fletcher4_append(zs_f4 *s, const uint64_t *ck, uint64_t len) {
  const uint64_t n = len / 4, t2 = tri2(n), t3 = tri3(n);
  const uint64_t A = s->a, B = s->b, C = s->c, D = s->d;
  s->a = A + ck[0];
  s->b = B + n * A + ck[1];
  s->c = C + n * B + t2 * A + ck[2];
  s->d = D + n * C + t2 * B + t3 * A + ck[3];
}

/** Fletcher4.append in one call: folds in len bytes from their own sums ck[4] (from zero). */
ZS_EXPORT void zs_fletcher4_append(uint64_t *state, const uint64_t *ck, uint32_t len) {
  zs_f4 s;
  uint64_t c[4];
  memcpy(&s, state, sizeof s); /* either may be only 4-byte aligned */
  memcpy(c, ck, sizeof c);
  fletcher4_append(&s, c, len);
  memcpy(state, &s, sizeof s);
}

#define ZS_RECORD_SIZE 312
#define ZS_RECORD_CHECKSUM_AT 280
#define ZS_RECORDS_SWAP 1        /* words byteswapped (big-endian on x86-64), as _byteswap */
#define ZS_RECORDS_NO_CHECKSUM 2 /* a stream without record checksums: zeros there */

/*
 * A run of count records into a stream's running checksum, as StreamWriter.writeEncoded does
 * for each: fold the 312-byte header up to its checksum, write the state there (four u64 in
 * the stream's byte order), fold the rest, then fold in the payload of payload_len bytes from
 * its own fletcher-4 sums[4 i .. 4 i + 3]. One call for thousands of WRITE records, instead of
 * three per record; foldRecords in core/fletcher4_records.ts is the TypeScript twin.
 */
ZS_EXPORT void zs_fletcher4_records(uint64_t *state, uint8_t *headers, uint32_t count,
                                    const uint64_t *sums, uint32_t payload_len,
                                    uint32_t flags) {
  const int swap = (flags & ZS_RECORDS_SWAP) != 0;
  const int big_endian = swap != (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__);
  zs_f4 s;
  memcpy(&s, state, sizeof s);
  for (uint32_t i = 0; i < count; i++) {
    uint8_t *h = headers + (uint64_t)i * ZS_RECORD_SIZE;
    fletcher4_f4(&s, h, ZS_RECORD_CHECKSUM_AT, big_endian);
    uint64_t ck[4] = {s.a, s.b, s.c, s.d};
    if (flags & ZS_RECORDS_NO_CHECKSUM) memset(ck, 0, sizeof ck);
    else if (swap)
      for (int k = 0; k < 4; k++) ck[k] = __builtin_bswap64(ck[k]);
    memcpy(h + ZS_RECORD_CHECKSUM_AT, ck, sizeof ck);
    fletcher4_f4(&s, h + ZS_RECORD_CHECKSUM_AT, ZS_RECORD_SIZE - ZS_RECORD_CHECKSUM_AT,
                 big_endian);
    if (payload_len > 0) fletcher4_append(&s, sums + 4 * (uint64_t)i, payload_len);
  }
  memcpy(state, &s, sizeof s);
}

/** 1 when a[0..len) and b[0..len) hold the same bytes, else 0. */
ZS_EXPORT int32_t zs_memeq(const uint8_t *a, const uint8_t *b, uint32_t len) {
  return memcmp(a, b, len) == 0;
}

/** The name of the implementation in use: "avx512", "avx2", "sse2" or "scalar". */
ZS_EXPORT const char *zs_fletcher4_impl(void) {
  if (!current) zs_init();
  return current->name;
}

/**
 * Switches implementation (for tests and benchmarks; not thread-safe): "auto" picks the best
 * the CPU supports. Returns 0, or -1 if the name is unknown or the CPU lacks the feature.
 */
ZS_EXPORT int zs_fletcher4_select(const char *name) {
  if (!current) zs_init();
  if (strcmp(name, "auto") == 0) {
    current = best_impl();
    return 0;
  }
  for (unsigned i = 0; i < NIMPLS; i++) {
    if (strcmp(name, impls[i].name) == 0) {
      if (!impls[i].supported()) return -1;
      current = &impls[i];
      return 0;
    }
  }
  return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Positional I/O                                                                             */
/* ------------------------------------------------------------------------------------------ */

/* Portable open flags (the same on every OS, unlike O_*). */
#define ZS_O_WRITE 1  /* read-write instead of read-only */
#define ZS_O_CREATE 2 /* O_CREAT */
#define ZS_O_TRUNC 4  /* O_TRUNC */
#define ZS_O_EXCL 8   /* O_EXCL */

/** Opens path (NUL-terminated) with ZS_O_* flags; returns the fd or -errno. */
ZS_EXPORT int32_t zs_open(const char *path, uint32_t flags, uint32_t mode) {
  int f = O_CLOEXEC | ((flags & ZS_O_WRITE) ? O_RDWR : O_RDONLY);
  if (flags & ZS_O_CREATE) f |= O_CREAT;
  if (flags & ZS_O_TRUNC) f |= O_TRUNC;
  if (flags & ZS_O_EXCL) f |= O_EXCL;
  int fd;
  do fd = open(path, f, (mode_t)mode);
  while (fd < 0 && errno == EINTR);
  return fd < 0 ? -errno : fd;
}

/** strerror(err), for error messages. */
ZS_EXPORT const char *zs_strerror(int32_t err) { return strerror(err); }

/** Closes fd; returns 0 or -errno. */
ZS_EXPORT int32_t zs_close(int32_t fd) { return close(fd) < 0 ? -errno : 0; }

/** fsync(fd); returns 0 or -errno. */
ZS_EXPORT int32_t zs_fsync(int32_t fd) {
  int r;
  do r = fsync(fd);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

/** The size in bytes of a regular file or block device; -errno on error. */
ZS_EXPORT int64_t zs_size(int32_t fd) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
#ifdef BLKGETSIZE64
  if (S_ISBLK(st.st_mode)) {
    uint64_t size;
    if (ioctl(fd, BLKGETSIZE64, &size) < 0) return -errno;
    return (int64_t)size;
  }
#endif
  if (S_ISREG(st.st_mode)) return (int64_t)st.st_size;
  off_t end = lseek(fd, 0, SEEK_END); /* other kinds: whatever lseek says */
  return end < 0 ? -errno : (int64_t)end;
}

/** Reads up to len bytes at off, looping over short reads; bytes read (< len at EOF) or -errno. */
ZS_EXPORT int64_t zs_pread(int32_t fd, uint8_t *buf, uint64_t len, uint64_t off) {
  uint64_t done = 0;
  while (done < len) {
    ssize_t r = pread(fd, buf + done, len - done, (off_t)(off + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) break;
    done += (uint64_t)r;
  }
  return (int64_t)done;
}

/* Whether ZSEND_NO_MMAP=1 asks for reads instead of mappings (to compare; the results are the
 * same). */
static int mapping_disabled(void) {
  const char *no = getenv("ZSEND_NO_MMAP");
  return no != NULL && strcmp(no, "1") == 0;
}

/*
 * Windows of a regular file mapped into memory, so that a reader checks the page cache's own
 * pages instead of a copy of them (the kernel's copy costs about as much as everything else
 * verify does). A slot is address space reserved once and always mapped (the file's pages or
 * anonymous zeros), so that a stale view into it reads other bytes, as a refilled buffer does,
 * and never faults.
 */

/*
 * A file that shrinks while it is mapped (another process truncates it) makes a read of the
 * pages past its new end raise SIGBUS, which would kill the process, in the middle of
 * JavaScript that reads a window. The ranges this library maps from files are registered as
 * guarded; a SIGBUS inside one maps zeros over the page (the read then goes on, and sees zeros)
 * and is counted. A reader asks zs_map_faults whether that happened and reports the file as
 * changed instead of trusting what it read. A SIGBUS elsewhere goes to the handler before ours.
 */
enum { GUARDS = 256 };
static _Atomic uintptr_t guard_lo[GUARDS], guard_hi[GUARDS];
static _Atomic uint64_t map_faults;
static struct sigaction bus_before;
static uintptr_t guard_page;
static pthread_once_t bus_once = PTHREAD_ONCE_INIT;

static void on_bus(int sig, siginfo_t *si, void *ctx) {
  const uintptr_t a = (uintptr_t)si->si_addr;
  for (int i = 0; i < GUARDS; i++) {
    const uintptr_t lo = atomic_load(&guard_lo[i]);
    if (lo != 0 && lo <= a && a < atomic_load(&guard_hi[i])) {
      void *page = (void *)(a & ~(guard_page - 1));
      /* mmap is a plain system call here, safe in a handler (it takes no lock of libc's). */
      if (mmap(page, guard_page, PROT_READ, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0) !=
          MAP_FAILED) {
        atomic_fetch_add(&map_faults, 1);
        return;
      }
    }
  }
  /* Not ours: the handler before ours takes it (or the default action, when the fault repeats
   * on return). */
  if ((bus_before.sa_flags & SA_SIGINFO) && bus_before.sa_sigaction != NULL) {
    bus_before.sa_sigaction(sig, si, ctx);
  } else if (bus_before.sa_handler != SIG_DFL && bus_before.sa_handler != SIG_IGN &&
             bus_before.sa_handler != NULL) {
    bus_before.sa_handler(sig);
  } else {
    signal(SIGBUS, SIG_DFL);
  }
}

static void bus_install(void) {
  guard_page = (uintptr_t)sysconf(_SC_PAGESIZE);
  /* The handler is this library's code: it must stay loaded while the handler is set. */
  Dl_info self;
  if (dladdr((void *)bus_install, &self) == 0 || self.dli_fname == NULL ||
      dlopen(self.dli_fname, RTLD_NOW | RTLD_NODELETE) == NULL) {
    return;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_bus;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, &bus_before);
}

/* Registers [p, p + len) as guarded; 0, or -1 when the table is full (then unguarded). */
static int guard_add(const void *p, uint64_t len) {
  pthread_once(&bus_once, bus_install);
  for (int i = 0; i < GUARDS; i++) {
    uintptr_t none = 0;
    /* hi is 0 in a free entry (guard_remove clears it first): the handler skips it until set. */
    if (atomic_compare_exchange_strong(&guard_lo[i], &none, (uintptr_t)p)) {
      atomic_store(&guard_hi[i], (uintptr_t)p + len);
      return 0;
    }
  }
  return -1;
}

/* Lets go of the guard of the range that starts at p. */
static void guard_remove(const void *p) {
  for (int i = 0; i < GUARDS; i++) {
    if (atomic_load(&guard_lo[i]) == (uintptr_t)p) {
      atomic_store(&guard_hi[i], 0);
      atomic_store(&guard_lo[i], 0);
      return;
    }
  }
}

/** SIGBUS faults in guarded mappings since the process began (a file shrank under one). */
ZS_EXPORT uint64_t zs_map_faults(void) { return atomic_load(&map_faults); }

/** Reserves len bytes of address space, mapped to zeros (no memory until read), guarded against
 * a mapped file that shrinks; NULL on error. It is never unmapped (a view kept too long must not
 * fault): a reader reuses it. */
ZS_EXPORT uint8_t *zs_map_reserve(uint64_t len) {
  /*
   * At a 2 MiB boundary: a window mapped there from a 2 MiB file offset can take the page
   * cache's 2 MiB folios with one page-table entry each, instead of 512 (the kernel maps a
   * folio whole only where the address and the file offset agree modulo its size).
   */
  const uint64_t huge = 2u << 20;
  uint8_t *p = mmap(NULL, len + huge, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                    -1, 0);
  if (p == MAP_FAILED) return NULL;
  uint8_t *a = (uint8_t *)(((uintptr_t)p + huge - 1) & ~(uintptr_t)(huge - 1));
  if (a > p) munmap(p, (size_t)(a - p));
  if (a + len < p + len + huge) munmap(a + len, (size_t)(p + len + huge - (a + len)));
  guard_add(a, len);
  return a;
}

/* A file range mapped read-only and guarded, for a reader in this library; MAP_FAILED on error.
 * unmap_guarded lets it go. */
static void *map_guarded(size_t len, int fd, uint64_t at, int flags) {
  void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE | flags, fd, (off_t)at);
  if (m != MAP_FAILED) guard_add(m, len);
  return m;
}

static void unmap_guarded(void *p, size_t len) {
  guard_remove(p);
  munmap(p, len);
}


/** Maps zeros over [p, p + len) of a slot (dropping any file pages there); 0 or -errno. */
static int32_t map_zeros(uint8_t *p, uint64_t len) {
  if (len == 0) return 0;
  void *m = mmap(p, len, PROT_READ, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return m == MAP_FAILED ? -errno : 0;
}

/**
 * Maps the bytes of fd from off (a multiple of the page size) into slot, at most slot_len (a
 * multiple of the page size), with their pages read in when populate is set (MAP_POPULATE;
 * else zs_prefetch can read them in on a thread of its own), and zeros over the rest
 * of the slot. Returns the bytes mapped: the file's size now past off, at most slot_len (0 at
 * its end); -ENODEV when fd is not a regular file; -errno on error. The size is taken at each
 * call, so that a file that grows is followed and one that shrank is not mapped past its end.
 * fd -1 just maps zeros over the whole slot (to let go of the file's pages).
 */
static void page_sums_forget(const uint8_t *from, uint64_t len);
static void jobs_settle(const uint8_t *slot, uint64_t len);

/* The mapping itself (zs_map_window without the bookkeeping of sums and jobs). */
static int64_t map_window_now(uint8_t *slot, uint64_t slot_len, int32_t fd, uint64_t off,
                              uint32_t populate) {
  uint64_t len = 0;
  if (fd >= 0) {
    struct stat st;
    if (fstat(fd, &st) < 0) return -errno;
    if (!S_ISREG(st.st_mode)) return -ENODEV;
    uint64_t size = (uint64_t)st.st_size;
    len = size > off ? size - off : 0;
    if (len > slot_len) len = slot_len;
  }
  uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
  uint64_t mapped = (len + page - 1) & ~(page - 1);
  if (len > 0) {
    const int flags = MAP_PRIVATE | MAP_FIXED | (populate ? MAP_POPULATE : 0);
    void *m = mmap(slot, mapped, PROT_READ, flags, fd, (off_t)off);
    if (m == MAP_FAILED) {
      int err = errno;
      map_zeros(slot, slot_len); /* a failed MAP_FIXED may have left a hole */
      return -err;
    }
  }
  int32_t z = map_zeros(slot + mapped, slot_len - mapped);
  return z < 0 ? z : (int64_t)len;
}

ZS_EXPORT int64_t zs_map_window(uint8_t *slot, uint64_t slot_len, int32_t fd, uint64_t off,
                                uint32_t populate) {
  /* Whatever was summed in the slot is of bytes about to be replaced. */
  page_sums_forget(slot, slot_len);
  jobs_settle(slot, slot_len);
  return map_window_now(slot, slot_len, fd, off, populate);
}

/*
 * Page sums. Once the prefetch thread has read a window's pages in, it also takes the
 * fletcher-4 of each whole 4 KiB page from zero, runs of pages from the window's end back,
 * while the reader checks the window before. When the reader then folds a payload in the window
 * (zs_fletcher4_native), each page already summed is folded in from its sum (fletcher-4 is
 * linear: fletcher4_append), and the pages not summed yet are read there as before; the two
 * threads meet somewhere in the window and no page is read twice. The result is the same
 * bit for bit whichever thread summed a page.
 *
 * Validity: every window has a generation, bumped when zs_map_async or zs_prefetch registers
 * it and when anything is mapped over it. A page's sum counts only when its stamp is the
 * window's current generation; the stamp is stored (release) after the sum, and read
 * (acquire) before it. The prefetch thread works on one request at a time, in order, and
 * stops a window as soon as its generation moves on, so a stale sum never carries a current
 * stamp. The windows are registered and looked up on the reader's thread only.
 */
#define SUM_PAGE 4096u
#define SUM_WINDOWS 8
#define SUM_MAX_PAGES 4096u /* windows up to 16 MiB; pages past that are read as before */

typedef struct {
  const uint8_t *base; /* page-aligned; NULL: free */
  uint64_t pages;      /* whole pages registered (0: nothing to use) */
  _Atomic uint64_t gen;
  zs_f4 *sums;             /* SUM_MAX_PAGES, allocated on first use, never freed */
  _Atomic uint64_t *stamp; /* the generation each sum was taken under */
} sum_window;

static sum_window sum_windows[SUM_WINDOWS];
static unsigned sum_next_evict;
static int page_sums_off = -1; /* ZSEND_NO_PAGE_SUMS=1 turns them off (to compare) */

static void page_sums_forget(const uint8_t *from, uint64_t len) {
  for (unsigned i = 0; i < SUM_WINDOWS; i++) {
    sum_window *w = &sum_windows[i];
    if (w->base == NULL || w->pages == 0) continue;
    const uint8_t *end = w->base + w->pages * SUM_PAGE;
    if (w->base < from + len && from < end) {
      w->pages = 0;
      atomic_fetch_add_explicit(&w->gen, 1, memory_order_release);
    }
  }
}

/* Registers [addr, addr + len) for summing; its window and the generation, or NULL. */
static sum_window *page_sums_register(const uint8_t *addr, uint64_t len, uint64_t *gen) {
  if (page_sums_off < 0) {
    const char *e = getenv("ZSEND_NO_PAGE_SUMS");
    page_sums_off = e != NULL && strcmp(e, "1") == 0;
  }
  if (page_sums_off || ((uintptr_t)addr & (SUM_PAGE - 1)) != 0 || len < SUM_PAGE) return NULL;
  sum_window *w = NULL;
  for (unsigned i = 0; i < SUM_WINDOWS && w == NULL; i++)
    if (sum_windows[i].base == addr) w = &sum_windows[i];
  for (unsigned i = 0; i < SUM_WINDOWS && w == NULL; i++)
    if (sum_windows[i].base == NULL) w = &sum_windows[i];
  if (w == NULL) w = &sum_windows[sum_next_evict++ % SUM_WINDOWS];
  if (w->sums == NULL) {
    w->sums = malloc(SUM_MAX_PAGES * sizeof *w->sums);
    w->stamp = calloc(SUM_MAX_PAGES, sizeof *w->stamp);
    if (w->sums == NULL || w->stamp == NULL) {
      free(w->sums);
      free((void *)w->stamp);
      w->sums = NULL;
      w->stamp = NULL;
      return NULL;
    }
  }
  uint64_t pages = len / SUM_PAGE;
  if (pages > SUM_MAX_PAGES) pages = SUM_MAX_PAGES;
  *gen = atomic_fetch_add_explicit(&w->gen, 1, memory_order_release) + 1;
  w->base = addr;
  w->pages = pages;
  return w;
}

static void maps_run(void);

/* Pages the prefetch thread sums in one run, first to last (runs go from the window's end). */
#define SUM_RUN 16

/*
 * Prefetch thread: the sums of w's pages while its generation is gen. Runs of SUM_RUN pages go
 * from the window's end towards the reader, each run in address order (read backwards page by
 * page, the memory ran about a sixth slower); a run that meets the reader's pages is the last.
 */
static void page_sums_take(sum_window *w, uint64_t gen, const uint8_t *base, uint64_t pages) {
  const uint64_t mine = gen + (1ull << 63);
  for (uint64_t end = pages; end > 0;) {
    const uint64_t start = end > SUM_RUN ? end - SUM_RUN : 0;
    maps_run();
    int met = 0;
    for (uint64_t k = start; k < end; k++) {
      if (atomic_load_explicit(&w->gen, memory_order_acquire) != gen) return;
      /* The reader's fold reached this page first. */
      if (atomic_load_explicit(&w->stamp[k], memory_order_relaxed) == mine) {
        met = 1;
        continue;
      }
      zs_f4 s = {0, 0, 0, 0};
      fletcher4_f4(&s, base + k * SUM_PAGE, SUM_PAGE, __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__);
      w->sums[k] = s;
      atomic_store_explicit(&w->stamp[k], gen, memory_order_release);
    }
    if (met) return;
    end = start;
  }
}

static uint64_t page_sums_folded; /* pages folded from their sums (reader's thread only) */

/** Pages folded in from the prefetch thread's sums since the process began (for tests). */
ZS_EXPORT uint64_t zs_page_sums_used(void) { return page_sums_folded; }

/*
 * Folds buf[0..len) into s using the page sums of the window it lies in; 0 when it does not
 * lie in one (the caller then reads it all). Pages not summed yet are read here, and marked
 * so that the prefetch thread, coming from the window's end, stops where the reader began.
 */
static int page_sums_fold(zs_f4 *s, const uint8_t *buf, uint64_t len) {
  if (len < 2 * SUM_PAGE || ((uintptr_t)buf & 3) != 0) return 0;
  sum_window *w = NULL;
  for (unsigned i = 0; i < SUM_WINDOWS; i++) {
    sum_window *c = &sum_windows[i];
    if (c->pages != 0 && c->base <= buf && buf + len <= c->base + c->pages * SUM_PAGE) {
      w = c;
      break;
    }
  }
  if (w == NULL) return 0;
  const int be = __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__;
  const uint64_t gen = atomic_load_explicit(&w->gen, memory_order_acquire);
  const uint8_t *end = buf + (len & ~(uint64_t)3);
  uint64_t k = (uint64_t)(buf - w->base + SUM_PAGE - 1) / SUM_PAGE; /* first whole page */
  const uint8_t *p = w->base + k * SUM_PAGE;
  if (p > end) p = end;
  fletcher4_f4(s, buf, (uint64_t)(p - buf), be); /* up to the first page boundary */
  const uint8_t *run = NULL; /* pages not summed yet, read together */
  for (; p + SUM_PAGE <= end; p += SUM_PAGE, k++) {
    if (atomic_load_explicit(&w->stamp[k], memory_order_acquire) == gen) {
      if (run != NULL) fletcher4_f4(s, run, (uint64_t)(p - run), be);
      run = NULL;
      fletcher4_append(s, (const uint64_t *)&w->sums[k], SUM_PAGE);
      page_sums_folded++;
    } else {
      if (run == NULL) run = p;
      atomic_store_explicit(&w->stamp[k], gen + (1ull << 63), memory_order_relaxed);
    }
  }
  if (run == NULL) run = p;
  fletcher4_f4(s, run, (uint64_t)(end - run), be); /* the pages read here, and the tail */
  return 1;
}

/*
 * The reader's helper thread (the prefetch thread) takes jobs in order:
 *  - maps: a window mapped into a slot the reader is done with (zs_map_async), over the window
 *    that was there. The reader's thread then never takes the process's mmap lock for writing,
 *    nor waits for it while this thread holds it (that cost verify's thread about 50 ms in
 *    520 synchronous maps), and the unmapping of the old pages happens here too;
 *  - reading in: a mapped window's pages populated, then summed (page sums above).
 * Maps go first, as the reader may be waiting for one (zs_map_wait): reading in and summing
 * stop between pieces to do them.
 */
#define JOBS 16
#define RESULTS 64
enum { JOB_QUEUED, JOB_MAPPING, JOB_MAPPED };

typedef struct {
  uint8_t *slot;
  uint64_t len;
  int32_t fd;
  uint64_t off;
  sum_window *w;
  uint64_t gen;
  uint32_t ticket; /* 0: reading in only (zs_prefetch) */
  int state;
  int64_t result; /* bytes mapped, or -errno */
} map_job;

static pthread_mutex_t prefetch_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t prefetch_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t mapped_cv = PTHREAD_COND_INITIALIZER;
static map_job jobs[JOBS]; /* a ring: jobs[job_head], ... (job_count of them) */
static unsigned job_head, job_count;
static _Atomic unsigned maps_queued;
static uint32_t last_ticket;
static struct {
  uint32_t ticket;
  int64_t result;
} map_results[RESULTS];
static int prefetch_started;

/*
 * Maps job j (queued; prefetch_mu held, dropped during the map). Either thread may: the
 * reader does it itself rather than wait when this thread has not come to it (it may not be
 * running at all on a busy machine). Only this thread removes jobs, and new ones go at the
 * end, so j is still the same job afterwards.
 */
static void map_job_run_locked(map_job *j) {
  j->state = JOB_MAPPING;
  atomic_fetch_sub_explicit(&maps_queued, 1, memory_order_relaxed);
  const map_job copy = *j;
  pthread_mutex_unlock(&prefetch_mu);
  const int64_t r = map_window_now(copy.slot, copy.len, copy.fd, copy.off, 0);
  pthread_mutex_lock(&prefetch_mu);
  j->result = r;
  j->state = JOB_MAPPED;
  map_results[copy.ticket % RESULTS].result = r;
  map_results[copy.ticket % RESULTS].ticket = copy.ticket;
  pthread_cond_broadcast(&mapped_cv);
}

/* Does the maps queued, in order (prefetch_mu held; dropped during each). */
static void maps_run_locked(void) {
  for (unsigned i = 0; i < job_count; i++) {
    map_job *j = &jobs[(job_head + i) % JOBS];
    if (j->ticket != 0 && j->state == JOB_QUEUED) map_job_run_locked(j);
  }
}

/* Between pieces of reading in and summing. */
static void maps_run(void) {
  if (atomic_load_explicit(&maps_queued, memory_order_relaxed) == 0) return;
  pthread_mutex_lock(&prefetch_mu);
  maps_run_locked();
  pthread_mutex_unlock(&prefetch_mu);
}

/*
 * Reads in the pages of [a, a + n), in pieces: populating holds the mmap lock for reading,
 * and a map waiting behind it waits for the whole piece.
 */
static void populate(uint8_t *a, uint64_t n) {
  const uint64_t piece = 256 << 10;
  for (uint64_t at = 0; at < n; at += piece) {
    maps_run();
    const uint64_t len = n - at < piece ? n - at : piece;
#ifdef MADV_POPULATE_READ
    if (madvise(a + at, len, MADV_POPULATE_READ) == 0) continue;
#endif
    volatile uint8_t sink = 0;
    for (uint64_t i = 0; i < len; i += 4096) sink ^= a[at + i];
    (void)sink;
  }
}

static int window_current(const map_job *j) {
  return j->w == NULL || atomic_load_explicit(&j->w->gen, memory_order_acquire) == j->gen;
}

static void *prefetch_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&prefetch_mu);
  for (;;) {
    while (job_count == 0) pthread_cond_wait(&prefetch_cv, &prefetch_mu);
    maps_run_locked();
    map_job j = jobs[job_head]; /* mapped now, or reading in only */
    pthread_mutex_unlock(&prefetch_mu);
    /* The range is always mapped (a slot is the file's pages or zeros), so reading it is safe
     * even when the reader has mapped something else there meanwhile. A window mapped over
     * since (its generation moved on) is not read in: it is no longer the reader's. */
    if (j.result > 0 && window_current(&j)) {
      populate(j.slot, (uint64_t)j.result);
      if (j.w != NULL) {
        const uint64_t pages = (uint64_t)j.result / SUM_PAGE;
        page_sums_take(j.w, j.gen, j.slot, pages < SUM_MAX_PAGES ? pages : SUM_MAX_PAGES);
      }
    }
    pthread_mutex_lock(&prefetch_mu);
    job_head = (job_head + 1) % JOBS;
    job_count--;
  }
  return NULL;
}

/* Starts the prefetch thread once (prefetch_mu held); 0 or -errno. */
static int32_t prefetch_start_locked(void) {
  if (prefetch_started) return 0;
  /* The thread runs this library's code until the process ends: the library must stay
   * loaded even when the program lets go of it (Deno closes it as the process exits). */
  Dl_info self;
  if (dladdr((void *)prefetch_main, &self) == 0 || self.dli_fname == NULL ||
      dlopen(self.dli_fname, RTLD_NOW | RTLD_NODELETE) == NULL)
    return -ENOTSUP;
  pthread_t t;
  int e = pthread_create(&t, NULL, prefetch_main, NULL);
  if (e != 0) return -e;
  pthread_detach(t);
  prefetch_started = 1;
  return 0;
}

/* Queues a job (prefetch_mu held); its ticket (0 for reading in only), or -errno. */
static int64_t job_push_locked(uint8_t *slot, uint64_t len, int32_t fd, uint64_t off, int map) {
  int32_t e = prefetch_start_locked();
  if (e < 0) return e;
  if (job_count == JOBS) return -EBUSY;
  map_job *j = &jobs[(job_head + job_count) % JOBS];
  memset(j, 0, sizeof *j);
  j->slot = slot;
  j->len = len;
  j->fd = fd;
  j->off = off;
  j->w = page_sums_register(slot, len, &j->gen);
  if (map) {
    j->ticket = ++last_ticket == 0 ? ++last_ticket : last_ticket;
    j->state = JOB_QUEUED;
    atomic_fetch_add_explicit(&maps_queued, 1, memory_order_relaxed);
  } else {
    j->state = JOB_MAPPED;
    j->result = (int64_t)len;
  }
  job_count++;
  pthread_cond_signal(&prefetch_cv);
  return j->ticket;
}

/* Waits until no queued or running map job writes into [slot, slot + len). */
static void jobs_settle(const uint8_t *slot, uint64_t len) {
  pthread_mutex_lock(&prefetch_mu);
  for (;;) {
    int busy = 0;
    for (unsigned i = 0; i < job_count && !busy; i++) {
      const map_job *j = &jobs[(job_head + i) % JOBS];
      busy = j->ticket != 0 && j->state != JOB_MAPPED && j->slot < slot + len &&
             slot < j->slot + j->len;
    }
    if (!busy) break;
    pthread_cond_wait(&mapped_cv, &prefetch_mu);
  }
  pthread_mutex_unlock(&prefetch_mu);
}

/**
 * Asks the prefetch thread to map the bytes of fd from off into slot, as zs_map_window does
 * (over whatever the slot held: the reader must be done with it), then read its pages in and
 * sum them. Returns a ticket for zs_map_wait (> 0), or -errno when it cannot be asked (map it
 * here instead).
 */
ZS_EXPORT int64_t zs_map_async(uint8_t *slot, uint64_t slot_len, int32_t fd, uint64_t off) {
  page_sums_forget(slot, slot_len);
  pthread_mutex_lock(&prefetch_mu);
  const int64_t t = job_push_locked(slot, slot_len, fd, off, 1);
  pthread_mutex_unlock(&prefetch_mu);
  return t;
}

/** The result of a zs_map_async, once the window is mapped: the bytes mapped, or -errno. */
ZS_EXPORT int64_t zs_map_wait(uint32_t ticket) {
  pthread_mutex_lock(&prefetch_mu);
  if (map_results[ticket % RESULTS].ticket != ticket) {
    for (unsigned i = 0; i < job_count; i++) {
      map_job *j = &jobs[(job_head + i) % JOBS];
      if (j->ticket == ticket && j->state == JOB_QUEUED) {
        map_job_run_locked(j);
        break;
      }
    }
  }
  while (map_results[ticket % RESULTS].ticket != ticket)
    pthread_cond_wait(&mapped_cv, &prefetch_mu);
  const int64_t r = map_results[ticket % RESULTS].result;
  pthread_mutex_unlock(&prefetch_mu);
  return r;
}

/** Asks the prefetch thread to read in (and sum) the pages of [addr, addr + len); 0 or -errno. */
ZS_EXPORT int32_t zs_prefetch(uint8_t *addr, uint64_t len) {
  pthread_mutex_lock(&prefetch_mu);
  const int64_t t = job_push_locked(addr, len, -1, 0, 0);
  pthread_mutex_unlock(&prefetch_mu);
  return t < 0 ? (int32_t)t : 0;
}

/**
 * Sets a path's access and modification times to the nanosecond (utimensat; with nofollow, a
 * symlink's own); 0 or -errno.
 */
ZS_EXPORT int32_t zs_utimens(const char *path, int64_t asec, uint32_t ansec, int64_t msec,
                             uint32_t mnsec, uint32_t nofollow) {
  const struct timespec ts[2] = {{(time_t)asec, (long)ansec}, {(time_t)msec, (long)mnsec}};
  return utimensat(AT_FDCWD, path, ts, nofollow ? AT_SYMLINK_NOFOLLOW : 0) < 0 ? -errno : 0;
}

/** Writes len bytes at off, looping over short writes; bytes written (= len) or -errno. */
ZS_EXPORT int64_t zs_pwrite(int32_t fd, const uint8_t *buf, uint64_t len, uint64_t off) {
  uint64_t done = 0;
  while (done < len) {
    ssize_t r = pwrite(fd, buf + done, len - done, (off_t)(off + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) return -EIO;
    done += (uint64_t)r;
  }
  return (int64_t)done;
}

/*
 * Extended attributes of an extracted file, without following a symlink at the end of the
 * path (Deno has no xattr API). 0 or -errno.
 */
ZS_EXPORT int32_t zs_lsetxattr(const char *path, const char *name, const uint8_t *value,
                               uint32_t len) {
  if (lsetxattr(path, name, value, len, 0) != 0) return -errno;
  return 0;
}

/*
 * Copies len bytes of in_fd from off to out_fd at its current position, in the kernel.
 * Returns len, or -errno (-EINVAL or -ENOSYS: out_fd does not take sendfile, nothing was
 * written by this call, so the caller can copy through memory instead).
 */
ZS_EXPORT int64_t zs_sendfile(int32_t out_fd, int32_t in_fd, uint64_t off, uint64_t len) {
#ifdef __linux__
  off_t pos = (off_t)off;
  uint64_t done = 0;
  while (done < len) {
    uint64_t want = len - done;
    if (want > 0x7ffff000u) want = 0x7ffff000u;
    ssize_t r = sendfile(out_fd, in_fd, &pos, (size_t)want);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) { /* a non-blocking output: wait until it takes more */
        struct pollfd p = {.fd = out_fd, .events = POLLOUT};
        if (poll(&p, 1, -1) >= 0 || errno == EINTR) continue;
        return -errno;
      }
      /* After a partial copy no fallback may start over: say it failed. */
      return done > 0 && (errno == EINVAL || errno == ENOSYS) ? -EIO : -errno;
    }
    if (r == 0) return -EIO; /* in_fd ended before len */
    done += (uint64_t)r;
  }
  return (int64_t)done;
#else
  (void)out_fd;
  (void)in_fd;
  (void)off;
  (void)len;
  return -ENOSYS;
#endif
}

#ifdef __linux__
/* Waits until a non-blocking fd takes more; 0, or -errno. */
static int wait_writable(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLOUT};
  return poll(&p, 1, -1) >= 0 || errno == EINTR ? 0 : -errno;
}

/* Writes all of v[0..n) at fd's position, adding each byte written to *done; 0 or -errno. */
static int writev_all(int fd, struct iovec *v, int n, uint64_t *done) {
  while (n > 0) {
    ssize_t r = writev(fd, v, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        int w = wait_writable(fd);
        if (w < 0) return w;
        continue;
      }
      return -errno;
    }
    *done += (uint64_t)r;
    while (n > 0 && (size_t)r >= v->iov_len) {
      r -= (ssize_t)v->iov_len;
      v++;
      n--;
    }
    if (n > 0) {
      v->iov_base = (uint8_t *)v->iov_base + r;
      v->iov_len -= (size_t)r;
    }
  }
  return 0;
}

/* Writes all of buf[0..len) at fd's position; 0 or -errno. */
static int write_all(int fd, const uint8_t *buf, uint64_t len) {
  struct iovec v = {(void *)buf, (size_t)len};
  uint64_t done = 0;
  return writev_all(fd, &v, 1, &done);
}

/*
 * Whether zs_send_records gathers records with writev from a mapping of in_fd instead of a
 * write and a sendfile per record: the output is not a pipe or socket (into those sendfile
 * moves page references rather than copying), the input is a regular file, and ZSEND_NO_MMAP
 * is not 1. Two system calls per 16 KiB block cost more than the one copy into a file or a
 * device (image send to /dev/null: a third less CPU, with the scan's mapping).
 */
static int gather_by_mapping(int32_t out_fd, int32_t in_fd) {
  if (mapping_disabled()) return 0;
  struct stat o, i;
  if (fstat(out_fd, &o) < 0 || fstat(in_fd, &i) < 0) return 0;
  return !S_ISFIFO(o.st_mode) && !S_ISSOCK(o.st_mode) && S_ISREG(i.st_mode);
}

/*
 * zs_send_records by writev from windows of in_fd mapped in turn (4 MiB or one payload), up to
 * 512 pieces a call. Returns the index of the first record not written (count when all are),
 * or -errno; -EIO when in_fd ends before a payload does. Stops early, before the header of
 * the record it returns, where a window cannot be mapped: the caller goes on by sendfile.
 */
static int64_t send_records_mapped(int32_t out_fd, int32_t in_fd, const uint8_t *headers,
                                   uint32_t header_len, uint32_t count, const double *offsets,
                                   uint32_t payload_len, uint64_t *done) {
  enum { WINDOW = 4 << 20, PIECES = 512 };
  const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
  struct iovec v[PIECES];
  int n = 0, err = 0;
  uint8_t *win = NULL;
  uint64_t win_at = 0, win_len = 0;
  uint32_t i = 0;
  for (; i < count; i++) {
    const double atd = offsets[i];
    if (!(atd >= 0 && atd < 9007199254740992.0)) {
      err = -ERANGE;
      break;
    }
    const uint64_t at = (uint64_t)atd;
    if (win == NULL || at < win_at || at + payload_len > win_at + win_len) {
      if ((err = writev_all(out_fd, v, n, done)) < 0) break;
      n = 0;
      if (win != NULL) munmap(win, win_len);
      win = NULL;
      struct stat st;
      if (fstat(in_fd, &st) < 0) {
        err = -errno;
        break;
      }
      const uint64_t size = (uint64_t)st.st_size;
      if (at + payload_len > size) {
        err = -EIO; /* mapped past its end, the file would fault: it shrank */
        break;
      }
      win_at = at & ~(page - 1);
      win_len = at + payload_len - win_at;
      if (win_len < WINDOW) win_len = size - win_at < WINDOW ? size - win_at : WINDOW;
      /* Not populated: the copy into the output faults the pages in as it reads them. */
      void *m = mmap(NULL, win_len, PROT_READ, MAP_PRIVATE, in_fd, (off_t)win_at);
      if (m == MAP_FAILED) break; /* the caller goes on by sendfile from record i */
      win = m;
    }
    if (n + 2 > PIECES) {
      if ((err = writev_all(out_fd, v, n, done)) < 0) break;
      n = 0;
    }
    v[n++] = (struct iovec){(void *)(headers + (uint64_t)i * header_len), header_len};
    if (payload_len > 0) v[n++] = (struct iovec){win + (at - win_at), payload_len};
  }
  if (err == 0) err = writev_all(out_fd, v, n, done);
  if (win != NULL) munmap(win, win_len);
  return err < 0 ? err : (int64_t)i;
}
#endif

/*
 * Writes count records to out_fd: each header (header_len bytes of headers, back to back),
 * then its payload, payload_len bytes of in_fd at offsets[i] (a double: exact for integers
 * below 2^53, and no BigInt per record on the JavaScript side), copied by zs_sendfile. One
 * call for a run of WRITE records of an image instead of two per record from JavaScript.
 * Into a file or a device (not a pipe or socket) from a regular file, the records are gathered
 * with writev from windows of in_fd mapped in turn instead (send_records_mapped): a few calls
 * for the run rather than two per record. *done gets the bytes written. Returns 0, or -errno: -EINVAL / -ENOSYS when out_fd refused
 * the first sendfile of a payload (its header is written, nothing of the payload), so the
 * caller goes on from *done through memory; -EIO when in_fd ends before a payload does;
 * -ERANGE for an offset that is not one.
 */
ZS_EXPORT int32_t zs_send_records(int32_t out_fd, int32_t in_fd, const uint8_t *headers,
                                  uint32_t header_len, uint32_t count, const double *offsets,
                                  uint32_t payload_len, uint64_t *done) {
  *done = 0;
#ifdef __linux__
  uint32_t from = 0;
  if (payload_len > 0 && gather_by_mapping(out_fd, in_fd)) {
    int64_t r = send_records_mapped(out_fd, in_fd, headers, header_len, count, offsets,
                                    payload_len, done);
    if (r < 0) return (int32_t)r;
    from = (uint32_t)r;
  }
  for (uint32_t i = from; i < count; i++) {
    int r = write_all(out_fd, headers + (uint64_t)i * header_len, header_len);
    if (r < 0) return r;
    *done += header_len;
    if (payload_len == 0) continue;
    const double at = offsets[i];
    if (!(at >= 0 && at < 9007199254740992.0)) return -ERANGE;
    int64_t n = zs_sendfile(out_fd, in_fd, (uint64_t)at, payload_len);
    if (n < 0) return (int32_t)n;
    *done += payload_len;
  }
  return 0;
#else
  (void)out_fd;
  (void)in_fd;
  (void)headers;
  (void)header_len;
  (void)count;
  (void)offsets;
  (void)payload_len;
  return -ENOSYS;
#endif
}

/*
 * Grows a pipe's buffer to at least `size` bytes (F_SETPIPE_SZ), so that a payload copied in
 * the kernel goes in one piece rather than 64 KiB at a time. Returns the new size, or -errno
 * (-EBADF / -EINVAL when fd is not a pipe, -EPERM past the system's limit).
 */
ZS_EXPORT int32_t zs_pipe_grow(int32_t fd, int32_t size) {
#if defined(__linux__) && defined(F_SETPIPE_SZ)
  int r = fcntl(fd, F_GETPIPE_SZ);
  if (r < 0) return -errno;
  if (r >= size) return r;
  r = fcntl(fd, F_SETPIPE_SZ, size);
  return r < 0 ? -errno : r;
#else
  (void)fd;
  (void)size;
  return -ENOSYS;
#endif
}

/*
 * zs_pread of want bytes at off into buf, then zeros up to len (blocks past the end of a file
 * read as zeros), then the fletcher-4 of each whole bs-byte block of buf[0..len) into out, as
 * zs_fletcher4_blocks. One call per chunk of an image scan, on a thread of the caller's: the
 * checksums run while the bytes are still in this core's cache, and two chunks in flight keep
 * two cores busy. Returns the bytes read (fewer than want at the end of the file) or -errno.
 */
ZS_EXPORT int64_t zs_pread_blocks(int32_t fd, uint8_t *buf, uint32_t want, uint32_t len,
                                  uint64_t off, uint64_t *out, uint32_t bs) {
  if (want > len) return -EINVAL;
  int64_t got = zs_pread(fd, buf, want, off);
  if (got < 0) return got;
  memset(buf + got, 0, len - (uint64_t)got);
  zs_fletcher4_blocks(out, buf, len, bs);
  return got;
}

/*
 * Whether zs_scan_blocks may map fd rather than read it: a regular file, unless ZSEND_NO_MMAP=1
 * asks for reads (to compare the two; the results are the same).
 */
static int scan_by_mapping(int32_t fd) {
  if (mapping_disabled()) return 0;
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * Up to n bytes of a regular file at off, mapped with their pages read in: *base and *map_len
 * to unmap, the bytes at the returned pointer; *got is fewer than n where the file ends now.
 * NULL (errno set) when it cannot be mapped.
 */
static const uint8_t *map_piece(int32_t fd, uint64_t off, uint64_t n, uint64_t *got, void **base,
                                size_t *map_len) {
  struct stat st;
  if (fstat(fd, &st) < 0) return NULL;
  const uint64_t size = (uint64_t)st.st_size;
  *got = size > off ? (size - off < n ? size - off : n) : 0;
  *base = NULL;
  *map_len = 0;
  if (*got == 0) return (const uint8_t *)"";
  const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
  const uint64_t at = off & ~(page - 1);
  *map_len = (size_t)(off - at + *got);
  void *m = map_guarded(*map_len, fd, at, MAP_POPULATE);
  if (m == MAP_FAILED) return NULL;
  *base = m;
  return (const uint8_t *)m + (off - at);
}

/*
 * zs_pread_blocks without handing the bytes back: the fletcher-4 of each whole bs-byte block of
 * the len bytes at off (want of them read from fd, the rest zeros) into out. A regular file is
 * mapped 4 MiB at a time (no copy: the checksum reads the page cache's own pages, -30% CPU for
 * a full scan); anything else goes through a 128 KiB buffer of this thread's, so each piece is
 * checksummed while it is still in this core's cache: a full image send needs only the
 * checksums, and not writing 4 MiB chunks out to memory and reading them back makes the scan
 * ~40% faster than that. Bytes read or -errno.
 */
/* The scan's running state: the block being summed, and how far into it. */
typedef struct {
  zs_f4 s;
  uint64_t block, in_block;
} scan_state;

/* Folds n bytes into the scan: each bs-byte block's sum goes to out as it completes (blocks
 * may span pieces, bs > a piece: the state carries over exactly). */
static void scan_fold(scan_state *st, const uint8_t *src, uint64_t n, uint64_t *out, uint32_t bs) {
  for (uint64_t k = 0; k < n;) {
    const uint64_t take = n - k < bs - st->in_block ? n - k : bs - st->in_block;
    fletcher4_f4(&st->s, src + k, take, 0);
    k += take;
    st->in_block += take;
    if (st->in_block == bs) {
      memcpy(out + 4 * st->block++, &st->s, sizeof st->s);
      st->s = (zs_f4){0, 0, 0, 0};
      st->in_block = 0;
    }
  }
}

ZS_EXPORT int64_t zs_scan_blocks(int32_t fd, uint32_t want, uint32_t len, uint64_t off,
                                 uint64_t *out, uint32_t bs) {
  enum { PIECE = 128 << 10, MAP_PIECE = 4 << 20 };
  if (want > len || bs == 0 || bs % 4 != 0) return -EINVAL;
  static __thread uint8_t *buf;
  /* Page-aligned: malloc puts a block this large 16 bytes past a page, and some CPUs (AMD
   * EPYC) copy into such an address several times slower (io/aligned_buffer.ts). */
  if (!buf && !(buf = aligned_alloc(4096, PIECE))) return -ENOMEM;
  const uint64_t faults = atomic_load(&map_faults);
  int mapping = scan_by_mapping(fd);
  const uint64_t end = (uint64_t)(len / bs) * bs;
  uint64_t got = 0;
  scan_state st = {{0, 0, 0, 0}, 0, 0};
  for (uint64_t pos = 0; pos < end;) {
    if (mapping && pos < want) {
      uint64_t n = want - pos < MAP_PIECE ? want - pos : MAP_PIECE;
      if (n > end - pos) n = end - pos;
      /* Whole blocks only: fletcher-4 folds whole words, and the block where the bytes end is
       * the read path's, which fills it out with zeros. */
      n -= n % bs;
      if (n == 0) {
        mapping = 0;
        continue;
      }
      uint64_t r;
      void *base;
      size_t map_len;
      const uint8_t *src = map_piece(fd, off + pos, n, &r, &base, &map_len);
      if (src == NULL) { /* no mapping (address space, a file system without it): reads */
        mapping = 0;
        continue;
      }
      if (r == n) {
        scan_fold(&st, src, n, out, bs);
        if (base != NULL) unmap_guarded(base, map_len);
        got += n;
        pos += n;
        continue;
      }
      /* The file ends early (now): reads from here, which give zeros past its end. */
      if (base != NULL) unmap_guarded(base, map_len);
      mapping = 0;
    }
    const uint64_t n = end - pos < PIECE ? end - pos : PIECE;
    uint64_t r = 0;
    if (pos < want) {
      const uint64_t w = want - pos < n ? want - pos : n;
      const int64_t g = zs_pread(fd, buf, w, off + pos);
      if (g < 0) return g;
      r = (uint64_t)g;
      got += r;
      if (r < w) want = (uint32_t)(pos + r); /* the end of the file: zeros from here */
    }
    memset(buf + r, 0, n - r);
    scan_fold(&st, buf, n, out, bs);
    pos += n;
  }
  /* A mapped piece that lost pages to a shrinking file read zeros: that is no checksum. */
  if (atomic_load(&map_faults) != faults) return -EIO;
  return (int64_t)got;
}

/*
 * Copies len bytes of in_fd at in_off to out_fd at out_off, in the kernel where it can
 * (copy_file_range: no copy through this process, as cp does), else through a buffer. Neither
 * file position moves. Returns len, or -errno (-EIO when in_fd ends first).
 */
ZS_EXPORT int64_t zs_copy_range(int32_t in_fd, uint64_t in_off, int32_t out_fd, uint64_t out_off,
                                uint64_t len) {
  uint64_t done = 0;
#ifdef __linux__
  while (done < len) {
    loff_t a = (loff_t)(in_off + done), b = (loff_t)(out_off + done);
    ssize_t r = copy_file_range(in_fd, &a, out_fd, &b, (size_t)(len - done), 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      /* Across filesystems, or not supported there: the buffer below. */
      if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) break;
      return -errno;
    }
    if (r == 0) return -EIO;
    done += (uint64_t)r;
  }
#endif
  if (done == len) return (int64_t)len;
  enum { CHUNK = 1 << 20 };
  static __thread uint8_t *buf;
  /* Page-aligned, as zs_scan_blocks's. */
  if (!buf && !(buf = aligned_alloc(4096, CHUNK))) return -ENOMEM;
  while (done < len) {
    uint64_t n = len - done < CHUNK ? len - done : CHUNK;
    int64_t r = zs_pread(in_fd, buf, n, in_off + done);
    if (r < 0) return r;
    if ((uint64_t)r != n) return -EIO;
    r = zs_pwrite(out_fd, buf, n, out_off + done);
    if (r < 0) return r;
    done += n;
  }
  return (int64_t)len;
}

/** Sets a file's length (ftruncate); 0 or -errno. */
ZS_EXPORT int32_t zs_ftruncate(int32_t fd, uint64_t len) {
  int r;
  do r = ftruncate(fd, (off_t)len);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

/*
 * Writes the buffers that iov names (pairs of address and length, as u64) one after another
 * at off: a run of block payloads that lie apart in memory (between their record headers)
 * and together in a pack, in one call. Returns the bytes written or -errno.
 */
ZS_EXPORT int64_t zs_pwritev(int32_t fd, const uint64_t *iov, uint32_t count, uint64_t off) {
  enum { BATCH = 64 };
  struct iovec v[BATCH];
  uint64_t done = 0;
  uint32_t i = 0;
  uint64_t skip = 0; /* bytes of iov[i] already written */
  while (i < count) {
    uint32_t n = 0;
    for (uint32_t j = i; j < count && n < BATCH; j++, n++) {
      uint64_t o = j == i ? skip : 0;
      v[n].iov_base = (void *)(uintptr_t)(iov[2 * j] + o);
      v[n].iov_len = (size_t)(iov[2 * j + 1] - o);
    }
    ssize_t r = pwritev(fd, v, (int)n, (off_t)(off + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) return -EIO;
    done += (uint64_t)r;
#ifdef SYNC_FILE_RANGE_WRITE
    /* Start the disk on these bytes now: the flush before the commit then finds less left. */
    sync_file_range(fd, (off_t)(off + done - (uint64_t)r), (off_t)r, SYNC_FILE_RANGE_WRITE);
#endif
    uint64_t left = (uint64_t)r;
    while (i < count && left >= iov[2 * i + 1] - skip) {
      left -= iov[2 * i + 1] - skip;
      skip = 0;
      i++;
    }
    skip += left;
  }
  return (int64_t)done;
}

/* --- Sealed blocks: pread, AES-GCM/CCM open, pwrite, off the JavaScript thread ----------------
 *
 * An encrypted dataset's data blocks lie sealed in the store's packs. zs_open_blocks opens a
 * batch of them (one file's run) on the thread it is called on: each block read from the pack,
 * decrypted and authenticated with its own key, IV and tag through OpenSSL's libcrypto (loaded
 * with dlopen on first use, so the library does not need it to load), and its plaintext written
 * to the target file unless it is all zeros (a hole stays a hole). Nothing of a block whose tag
 * does not match is written. */

typedef struct {
  void *(*ctx_new)(void);
  void (*ctx_free)(void *);
  int (*ctx_reset)(void *);
  const void *(*cipher[2][3])(void); /* [gcm, ccm][128, 192, 256] */
  int (*init)(void *, const void *, void *, const unsigned char *, const unsigned char *);
  int (*ctrl)(void *, int, int, void *);
  int (*update)(void *, unsigned char *, int *, const unsigned char *, int);
  int (*final)(void *, unsigned char *, int *);
} zs_evp;
static zs_evp evp;
static int evp_state; /* 0 not tried, 1 loaded, -1 not there */
static pthread_once_t evp_once = PTHREAD_ONCE_INIT;

static void evp_load(void) {
  static const char *const names[] = {"libcrypto.so.3", "libcrypto.so"};
  void *h = NULL;
  for (size_t i = 0; i < sizeof names / sizeof *names && !h; i++) h = dlopen(names[i], RTLD_NOW);
  if (!h) {
    evp_state = -1;
    return;
  }
#define ZS_SYM(field, name) (*(void **)&evp.field = dlsym(h, name))
  static const char *const cnames[2][3] = {
      {"EVP_aes_128_gcm", "EVP_aes_192_gcm", "EVP_aes_256_gcm"},
      {"EVP_aes_128_ccm", "EVP_aes_192_ccm", "EVP_aes_256_ccm"}};
  int ok = ZS_SYM(ctx_new, "EVP_CIPHER_CTX_new") && ZS_SYM(ctx_free, "EVP_CIPHER_CTX_free") &&
           ZS_SYM(ctx_reset, "EVP_CIPHER_CTX_reset") && ZS_SYM(init, "EVP_DecryptInit_ex") &&
           ZS_SYM(ctrl, "EVP_CIPHER_CTX_ctrl") && ZS_SYM(update, "EVP_DecryptUpdate") &&
           ZS_SYM(final, "EVP_DecryptFinal_ex");
  for (int m = 0; m < 2; m++)
    for (int k = 0; k < 3; k++) ok = ok && ZS_SYM(cipher[m][k], cnames[m][k]);
#undef ZS_SYM
  evp_state = ok ? 1 : -1;
}

/** 1 when libcrypto's AES-GCM/CCM can be used by zs_open_blocks, else 0. */
ZS_EXPORT int32_t zs_open_blocks_available(void) {
  pthread_once(&evp_once, evp_load);
  return evp_state == 1;
}

/* One block of a zs_open_blocks batch, as the caller lays it out (little-endian, 96 bytes). */
typedef struct {
  uint64_t src_off; /* where the sealed bytes lie in in_fd */
  uint64_t dst_off; /* where the plaintext goes in out_fd */
  uint32_t len;     /* sealed (= plaintext) length */
  uint32_t keep;    /* plaintext bytes written (the file's last block is cut at its size) */
  uint8_t key[32];  /* the block's AES key (key_len bytes of it) */
  uint8_t iv[12];
  uint8_t tag[16];
  uint8_t pad[12];
} zs_sealed;

_Static_assert(sizeof(zs_sealed) == 96, "zs_sealed is 96 bytes");
enum { ZS_EVP_SET_IVLEN = 0x9, ZS_EVP_SET_TAG = 0x11 };

enum { ZS_OPEN_WINDOW = 2u << 20 }; /* bytes of a pack mapped at once by zs_open_blocks */

/* The window of the pack for blocks i.. of desc: the end of the run of blocks from i that lie
 * in ascending order within ZS_OPEN_WINDOW bytes of the pack, their span not much more than
 * their bytes, and within the pack (a map past its end would fault where the bytes are
 * missing); [*at, *end) the page-aligned span to map. */
static uint32_t window(const uint8_t *desc, uint32_t i, uint32_t n, uint64_t pack_size,
                       uint64_t *at, uint64_t *end) {
  zs_sealed b;
  memcpy(&b, desc + (size_t)i * sizeof b, sizeof b);
  const uint64_t lo = b.src_off & ~(uint64_t)4095;
  uint64_t hi = b.src_off + b.len, sum = b.len;
  uint32_t j = i + 1;
  for (; j < n; j++) {
    memcpy(&b, desc + (size_t)j * sizeof b, sizeof b);
    const uint64_t e = b.src_off + b.len;
    if (b.src_off < hi || e - lo > ZS_OPEN_WINDOW || e > pack_size) break;
    if (e - lo > (sum + b.len) + (sum + b.len) / 4) break;
    hi = e;
    sum += b.len;
  }
  *at = lo;
  *end = hi;
  return hi > pack_size ? i + 1 : j;
}

/**
 * Opens `n` sealed blocks described by `desc` (zs_sealed each): mode 0 GCM, 1 CCM; key_len 16,
 * 24 or 32. Returns 0 when all were written, i + 1 when block i fails its tag (blocks before
 * it are written, nothing of it), -errno on an I/O error (-EIO: the pack ends early; -ENOSYS:
 * no libcrypto; -EINVAL: bad arguments).
 */
ZS_EXPORT int64_t zs_open_blocks(int32_t in_fd, int32_t out_fd, const uint8_t *desc, uint32_t n,
                                 uint32_t mode, uint32_t key_len) {
  if (!zs_open_blocks_available()) return -ENOSYS;
  if (mode > 1 || (key_len != 16 && key_len != 24 && key_len != 32)) return -EINVAL;
  const void *cipher = evp.cipher[mode][(key_len - 16) / 8]();
  static __thread uint8_t *in, *out;
  static __thread uint32_t cap;
  static __thread void *ctx;
  if (!ctx && !(ctx = evp.ctx_new())) return -ENOMEM;
  /* A file's blocks mostly lie one after another in a pack: map a window of the pack over the
   * next blocks, when its span is not much more than theirs, and open them from the page cache
   * where they are (no copy into a buffer first); else read each. A window at a time, so that a
   * whole file's blocks can go in one call with little memory mapped. */
  const uint64_t faults = atomic_load(&map_faults);
  uint8_t *map = NULL;
  size_t map_len = 0;
  uint64_t map_at = 0, map_end = 0; /* the window's bytes of the pack */
  uint32_t map_last = 0;            /* the window serves blocks before this one */
  struct stat st;
  const uint64_t pack_size = fstat(in_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
  int64_t status = 0;
  for (uint32_t i = 0; i < n && status == 0; i++) {
    zs_sealed b;
    memcpy(&b, desc + (size_t)i * sizeof b, sizeof b);
    if (b.len == 0 || b.keep > b.len || b.len > (1u << 24)) {
      status = -EINVAL;
      break;
    }
    if (b.len > cap) {
      free(in);
      free(out);
      uint32_t c = b.len < (1u << 17) ? (1u << 17) : b.len;
      in = aligned_alloc(4096, ((size_t)c + 4095) & ~(size_t)4095);
      out = aligned_alloc(4096, ((size_t)c + 16 + 4095) & ~(size_t)4095);
      if (!in || !out) {
        free(in);
        free(out);
        in = out = NULL;
        cap = 0;
        status = -ENOMEM;
        break;
      }
      cap = c;
    }
    const uint8_t *src = in;
    int64_t r;
    if (i >= map_last) {
      if (map) unmap_guarded(map, map_len);
      map = NULL;
      map_last = window(desc, i, n, pack_size, &map_at, &map_end);
      if (map_last > i + 1) {
        map_len = (size_t)(map_end - map_at);
        void *m = map_guarded(map_len, in_fd, map_at, MAP_POPULATE);
        if (m != MAP_FAILED) map = m;
      }
    }
    if (map) {
      src = map + (b.src_off - map_at);
    } else {
      r = zs_pread(in_fd, in, b.len, b.src_off);
      if (r < 0 || (uint64_t)r != b.len) {
        status = r < 0 ? r : -EIO;
        break;
      }
    }
    int outl = 0, ok;
    evp.ctx_reset(ctx);
    ok = evp.init(ctx, cipher, NULL, NULL, NULL) == 1;
    ok = ok && evp.ctrl(ctx, ZS_EVP_SET_IVLEN, 12, NULL) == 1;
    if (mode == 1) ok = ok && evp.ctrl(ctx, ZS_EVP_SET_TAG, 16, b.tag) == 1;
    ok = ok && evp.init(ctx, NULL, NULL, b.key, b.iv) == 1;
    if (!ok) {
      status = -EINVAL;
      break;
    }
    if (mode == 1) {
      /* CCM: the length first; the update that decrypts also checks the tag. */
      ok = evp.update(ctx, NULL, &outl, NULL, (int)b.len) == 1 &&
           evp.update(ctx, out, &outl, src, (int)b.len) == 1;
    } else {
      int fin = 0;
      ok = evp.update(ctx, out, &outl, src, (int)b.len) == 1 &&
           evp.ctrl(ctx, ZS_EVP_SET_TAG, 16, b.tag) == 1 &&
           evp.final(ctx, out + outl, &fin) == 1;
    }
    if (!ok) {
      status = (int64_t)i + 1;
      break;
    }
    /* All zeros: left a hole, as the unencrypted path leaves a zero block. */
    int zero = 1;
    for (uint32_t k = 0; k + 8 <= b.keep && zero; k += 8) {
      uint64_t w;
      memcpy(&w, out + k, 8);
      zero = w == 0;
    }
    for (uint32_t k = b.keep & ~7u; k < b.keep && zero; k++) zero = out[k] == 0;
    if (zero) continue;
    r = zs_pwrite(out_fd, out, b.keep, b.dst_off);
    if (r < 0) {
      status = r;
      break;
    }
  }
  if (map) unmap_guarded(map, map_len);
  if (status == 0 && atomic_load(&map_faults) != faults) status = -EIO; /* the pack shrank */
  return status;
}

/* --- PBKDF2-HMAC-SHA1 with the CPU's SHA extensions (a passphrase's wrapping key) -------------
 *
 * libzfs derives a passphrase's wrapping key with PBKDF2-HMAC-SHA1 (350,000 iterations by
 * default): two SHA-1 compressions per iteration once the HMAC pads are absorbed. With the SHA
 * extensions (SHA-NI) one compression is a few dozen instructions; without them this returns
 * -ENOSYS and the caller uses Web Crypto. */

static int has_sha_ni(void) {
#ifdef ZS_X86
  unsigned a, b, c, d;
  if (__get_cpuid_max(0, NULL) < 7) return 0;
  __cpuid_count(7, 0, a, b, c, d);
  (void)a;
  (void)c;
  (void)d;
  if (!(b & (1u << 29))) return 0;
  __cpuid(1, a, b, c, d);
  return (c & (1u << 19)) && (c & (1u << 9)); /* SSE4.1, SSSE3 */
#else
  return 0;
#endif
}

#ifdef ZS_X86
/* One SHA-1 compression of the 64-byte `block` into `state` (h0..h4). */
__attribute__((target("sha,sse4.1,ssse3"))) static void sha1_ni_block(uint32_t state[5],
                                                                     const uint8_t *block) {
  const __m128i mask = _mm_set_epi64x(0x0001020304050607LL, 0x08090a0b0c0d0e0fLL);
  __m128i abcd = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)state), 0x1B);
  __m128i e0 = _mm_set_epi32((int)state[4], 0, 0, 0), e1;
  const __m128i abcd_save = abcd, e0_save = e0;
  __m128i m0, m1, m2, m3;
  m0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(block + 0)), mask);
  e0 = _mm_add_epi32(e0, m0);
  e1 = abcd;
  abcd = _mm_sha1rnds4_epu32(abcd, e0, 0);
  m1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(block + 16)), mask);
  e1 = _mm_sha1nexte_epu32(e1, m1);
  e0 = abcd;
  abcd = _mm_sha1rnds4_epu32(abcd, e1, 0);
  m0 = _mm_sha1msg1_epu32(m0, m1);
  m2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(block + 32)), mask);
  e0 = _mm_sha1nexte_epu32(e0, m2);
  e1 = abcd;
  abcd = _mm_sha1rnds4_epu32(abcd, e0, 0);
  m1 = _mm_sha1msg1_epu32(m1, m2);
  m0 = _mm_xor_si128(m0, m2);
  m3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(block + 48)), mask);
  e1 = _mm_sha1nexte_epu32(e1, m3);
  e0 = abcd;
  m0 = _mm_sha1msg2_epu32(m0, m3);
  abcd = _mm_sha1rnds4_epu32(abcd, e1, 0);
  m2 = _mm_sha1msg1_epu32(m2, m3);
  m1 = _mm_xor_si128(m1, m3);
  e0 = _mm_sha1nexte_epu32(e0, m0);
  e1 = abcd;
  m1 = _mm_sha1msg2_epu32(m1, m0);
  abcd = _mm_sha1rnds4_epu32(abcd, e0, 0);
  m3 = _mm_sha1msg1_epu32(m3, m0);
  m2 = _mm_xor_si128(m2, m0);
  e1 = _mm_sha1nexte_epu32(e1, m1);
  e0 = abcd;
  m2 = _mm_sha1msg2_epu32(m2, m1);
  abcd = _mm_sha1rnds4_epu32(abcd, e1, 1);
  m0 = _mm_sha1msg1_epu32(m0, m1);
  m3 = _mm_xor_si128(m3, m1);
  e0 = _mm_sha1nexte_epu32(e0, m2);
  e1 = abcd;
  m3 = _mm_sha1msg2_epu32(m3, m2);
  abcd = _mm_sha1rnds4_epu32(abcd, e0, 1);
  m1 = _mm_sha1msg1_epu32(m1, m2);
  m0 = _mm_xor_si128(m0, m2);
  e1 = _mm_sha1nexte_epu32(e1, m3);
  e0 = abcd;
  m0 = _mm_sha1msg2_epu32(m0, m3);
  abcd = _mm_sha1rnds4_epu32(abcd, e1, 1);
  m2 = _mm_sha1msg1_epu32(m2, m3);
  m1 = _mm_xor_si128(m1, m3);
  e0 = _mm_sha1nexte_epu32(e0, m0);
  e1 = abcd;
  m1 = _mm_sha1msg2_epu32(m1, m0);
  abcd = _mm_sha1rnds4_epu32(abcd, e0, 1);
  m3 = _mm_sha1msg1_epu32(m3, m0);
  m2 = _mm_xor_si128(m2, m0);
  e1 = _mm_sha1nexte_epu32(e1, m1);
  e0 = abcd;
  m2 = _mm_sha1msg2_epu32(m2, m1);
  abcd = _mm_sha1rnds4_epu32(abcd, e1, 1);
  m0 = _mm_sha1msg1_epu32(m0, m1);
  m3 = _mm_xor_si128(m3, m1);
  e0 = _mm_sha1nexte_epu32(e0, m2);
  e1 = abcd;
  m3 = _mm_sha1msg2_epu32(m3, m2);
  abcd = _mm_sha1rnds4_epu32(abcd, e0, 2);
  m1 = _mm_sha1msg1_epu32(m1, m2);
  m0 = _mm_xor_si128(m0, m2);
  e1 = _mm_sha1nexte_epu32(e1, m3);
  e0 = abcd;
  m0 = _mm_sha1msg2_epu32(m0, m3);
  abcd = _mm_sha1rnds4_epu32(abcd, e1, 2);
  m2 = _mm_sha1msg1_epu32(m2, m3);
  m1 = _mm_xor_si128(m1, m3);
  e0 = _mm_sha1nexte_epu32(e0, m0);
  e1 = abcd;
  m1 = _mm_sha1msg2_epu32(m1, m0);
  abcd = _mm_sha1rnds4_epu32(abcd, e0, 2);
  m3 = _mm_sha1msg1_epu32(m3, m0);
  m2 = _mm_xor_si128(m2, m0);
  e1 = _mm_sha1nexte_epu32(e1, m1);
  e0 = abcd;
  m2 = _mm_sha1msg2_epu32(m2, m1);
  abcd = _mm_sha1rnds4_epu32(abcd, e1, 2);
  m0 = _mm_sha1msg1_epu32(m0, m1);
  m3 = _mm_xor_si128(m3, m1);
  e0 = _mm_sha1nexte_epu32(e0, m2);
  e1 = abcd;
  m3 = _mm_sha1msg2_epu32(m3, m2);
  abcd = _mm_sha1rnds4_epu32(abcd, e0, 2);
  m1 = _mm_sha1msg1_epu32(m1, m2);
  m0 = _mm_xor_si128(m0, m2);
  e1 = _mm_sha1nexte_epu32(e1, m3);
  e0 = abcd;
  m0 = _mm_sha1msg2_epu32(m0, m3);
  abcd = _mm_sha1rnds4_epu32(abcd, e1, 3);
  m2 = _mm_sha1msg1_epu32(m2, m3);
  m1 = _mm_xor_si128(m1, m3);
  e0 = _mm_sha1nexte_epu32(e0, m0);
  e1 = abcd;
  m1 = _mm_sha1msg2_epu32(m1, m0);
  abcd = _mm_sha1rnds4_epu32(abcd, e0, 3);
  m3 = _mm_sha1msg1_epu32(m3, m0);
  m2 = _mm_xor_si128(m2, m0);
  e1 = _mm_sha1nexte_epu32(e1, m1);
  e0 = abcd;
  m2 = _mm_sha1msg2_epu32(m2, m1);
  abcd = _mm_sha1rnds4_epu32(abcd, e1, 3);
  m3 = _mm_xor_si128(m3, m1);
  e0 = _mm_sha1nexte_epu32(e0, m2);
  e1 = abcd;
  m3 = _mm_sha1msg2_epu32(m3, m2);
  abcd = _mm_sha1rnds4_epu32(abcd, e0, 3);
  e1 = _mm_sha1nexte_epu32(e1, m3);
  e0 = abcd;
  abcd = _mm_sha1rnds4_epu32(abcd, e1, 3);
  e0 = _mm_sha1nexte_epu32(e0, e0_save);
  abcd = _mm_add_epi32(abcd, abcd_save);
  _mm_storeu_si128((__m128i *)state, _mm_shuffle_epi32(abcd, 0x1B));
  state[4] = (uint32_t)_mm_extract_epi32(e0, 3);
}
#endif

#ifdef ZS_X86
/* Two independent SHA-1 compressions, their instructions interleaved: one chain alone waits on
 * each instruction's latency, two keep the SHA unit busy (PBKDF2's output blocks 1 and 2). */
__attribute__((target("sha,sse4.1,ssse3"))) static void sha1_ni_block2(uint32_t statea[5],
                                                                      const uint8_t *blocka,
                                                                      uint32_t stateb[5],
                                                                      const uint8_t *blockb) {
  const __m128i mask = _mm_set_epi64x(0x0001020304050607LL, 0x08090a0b0c0d0e0fLL);
  __m128i abcda = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)statea), 0x1B);
  __m128i e0a = _mm_set_epi32((int)statea[4], 0, 0, 0), e1a;
  const __m128i abcda_save = abcda, e0a_save = e0a;
  __m128i m0a, m1a, m2a, m3a;
  __m128i abcdb = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)stateb), 0x1B);
  __m128i e0b = _mm_set_epi32((int)stateb[4], 0, 0, 0), e1b;
  const __m128i abcdb_save = abcdb, e0b_save = e0b;
  __m128i m0b, m1b, m2b, m3b;
  m0a = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blocka + 0)), mask);
  e0a = _mm_add_epi32(e0a, m0a);
  e1a = abcda;
  abcda = _mm_sha1rnds4_epu32(abcda, e0a, 0);
  m0b = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blockb + 0)), mask);
  e0b = _mm_add_epi32(e0b, m0b);
  e1b = abcdb;
  abcdb = _mm_sha1rnds4_epu32(abcdb, e0b, 0);
  m1a = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blocka + 16)), mask);
  e1a = _mm_sha1nexte_epu32(e1a, m1a);
  e0a = abcda;
  abcda = _mm_sha1rnds4_epu32(abcda, e1a, 0);
  m0a = _mm_sha1msg1_epu32(m0a, m1a);
  m1b = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blockb + 16)), mask);
  e1b = _mm_sha1nexte_epu32(e1b, m1b);
  e0b = abcdb;
  abcdb = _mm_sha1rnds4_epu32(abcdb, e1b, 0);
  m0b = _mm_sha1msg1_epu32(m0b, m1b);
  m2a = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blocka + 32)), mask);
  e0a = _mm_sha1nexte_epu32(e0a, m2a);
  e1a = abcda;
  abcda = _mm_sha1rnds4_epu32(abcda, e0a, 0);
  m1a = _mm_sha1msg1_epu32(m1a, m2a);
  m0a = _mm_xor_si128(m0a, m2a);
  m2b = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blockb + 32)), mask);
  e0b = _mm_sha1nexte_epu32(e0b, m2b);
  e1b = abcdb;
  abcdb = _mm_sha1rnds4_epu32(abcdb, e0b, 0);
  m1b = _mm_sha1msg1_epu32(m1b, m2b);
  m0b = _mm_xor_si128(m0b, m2b);
  m3a = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blocka + 48)), mask);
  e1a = _mm_sha1nexte_epu32(e1a, m3a);
  e0a = abcda;
  m0a = _mm_sha1msg2_epu32(m0a, m3a);
  abcda = _mm_sha1rnds4_epu32(abcda, e1a, 0);
  m2a = _mm_sha1msg1_epu32(m2a, m3a);
  m1a = _mm_xor_si128(m1a, m3a);
  m3b = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blockb + 48)), mask);
  e1b = _mm_sha1nexte_epu32(e1b, m3b);
  e0b = abcdb;
  m0b = _mm_sha1msg2_epu32(m0b, m3b);
  abcdb = _mm_sha1rnds4_epu32(abcdb, e1b, 0);
  m2b = _mm_sha1msg1_epu32(m2b, m3b);
  m1b = _mm_xor_si128(m1b, m3b);
  e0a = _mm_sha1nexte_epu32(e0a, m0a);
  e1a = abcda;
  m1a = _mm_sha1msg2_epu32(m1a, m0a);
  abcda = _mm_sha1rnds4_epu32(abcda, e0a, 0);
  m3a = _mm_sha1msg1_epu32(m3a, m0a);
  m2a = _mm_xor_si128(m2a, m0a);
  e0b = _mm_sha1nexte_epu32(e0b, m0b);
  e1b = abcdb;
  m1b = _mm_sha1msg2_epu32(m1b, m0b);
  abcdb = _mm_sha1rnds4_epu32(abcdb, e0b, 0);
  m3b = _mm_sha1msg1_epu32(m3b, m0b);
  m2b = _mm_xor_si128(m2b, m0b);
  e1a = _mm_sha1nexte_epu32(e1a, m1a);
  e0a = abcda;
  m2a = _mm_sha1msg2_epu32(m2a, m1a);
  abcda = _mm_sha1rnds4_epu32(abcda, e1a, 1);
  m0a = _mm_sha1msg1_epu32(m0a, m1a);
  m3a = _mm_xor_si128(m3a, m1a);
  e1b = _mm_sha1nexte_epu32(e1b, m1b);
  e0b = abcdb;
  m2b = _mm_sha1msg2_epu32(m2b, m1b);
  abcdb = _mm_sha1rnds4_epu32(abcdb, e1b, 1);
  m0b = _mm_sha1msg1_epu32(m0b, m1b);
  m3b = _mm_xor_si128(m3b, m1b);
  e0a = _mm_sha1nexte_epu32(e0a, m2a);
  e1a = abcda;
  m3a = _mm_sha1msg2_epu32(m3a, m2a);
  abcda = _mm_sha1rnds4_epu32(abcda, e0a, 1);
  m1a = _mm_sha1msg1_epu32(m1a, m2a);
  m0a = _mm_xor_si128(m0a, m2a);
  e0b = _mm_sha1nexte_epu32(e0b, m2b);
  e1b = abcdb;
  m3b = _mm_sha1msg2_epu32(m3b, m2b);
  abcdb = _mm_sha1rnds4_epu32(abcdb, e0b, 1);
  m1b = _mm_sha1msg1_epu32(m1b, m2b);
  m0b = _mm_xor_si128(m0b, m2b);
  e1a = _mm_sha1nexte_epu32(e1a, m3a);
  e0a = abcda;
  m0a = _mm_sha1msg2_epu32(m0a, m3a);
  abcda = _mm_sha1rnds4_epu32(abcda, e1a, 1);
  m2a = _mm_sha1msg1_epu32(m2a, m3a);
  m1a = _mm_xor_si128(m1a, m3a);
  e1b = _mm_sha1nexte_epu32(e1b, m3b);
  e0b = abcdb;
  m0b = _mm_sha1msg2_epu32(m0b, m3b);
  abcdb = _mm_sha1rnds4_epu32(abcdb, e1b, 1);
  m2b = _mm_sha1msg1_epu32(m2b, m3b);
  m1b = _mm_xor_si128(m1b, m3b);
  e0a = _mm_sha1nexte_epu32(e0a, m0a);
  e1a = abcda;
  m1a = _mm_sha1msg2_epu32(m1a, m0a);
  abcda = _mm_sha1rnds4_epu32(abcda, e0a, 1);
  m3a = _mm_sha1msg1_epu32(m3a, m0a);
  m2a = _mm_xor_si128(m2a, m0a);
  e0b = _mm_sha1nexte_epu32(e0b, m0b);
  e1b = abcdb;
  m1b = _mm_sha1msg2_epu32(m1b, m0b);
  abcdb = _mm_sha1rnds4_epu32(abcdb, e0b, 1);
  m3b = _mm_sha1msg1_epu32(m3b, m0b);
  m2b = _mm_xor_si128(m2b, m0b);
  e1a = _mm_sha1nexte_epu32(e1a, m1a);
  e0a = abcda;
  m2a = _mm_sha1msg2_epu32(m2a, m1a);
  abcda = _mm_sha1rnds4_epu32(abcda, e1a, 1);
  m0a = _mm_sha1msg1_epu32(m0a, m1a);
  m3a = _mm_xor_si128(m3a, m1a);
  e1b = _mm_sha1nexte_epu32(e1b, m1b);
  e0b = abcdb;
  m2b = _mm_sha1msg2_epu32(m2b, m1b);
  abcdb = _mm_sha1rnds4_epu32(abcdb, e1b, 1);
  m0b = _mm_sha1msg1_epu32(m0b, m1b);
  m3b = _mm_xor_si128(m3b, m1b);
  e0a = _mm_sha1nexte_epu32(e0a, m2a);
  e1a = abcda;
  m3a = _mm_sha1msg2_epu32(m3a, m2a);
  abcda = _mm_sha1rnds4_epu32(abcda, e0a, 2);
  m1a = _mm_sha1msg1_epu32(m1a, m2a);
  m0a = _mm_xor_si128(m0a, m2a);
  e0b = _mm_sha1nexte_epu32(e0b, m2b);
  e1b = abcdb;
  m3b = _mm_sha1msg2_epu32(m3b, m2b);
  abcdb = _mm_sha1rnds4_epu32(abcdb, e0b, 2);
  m1b = _mm_sha1msg1_epu32(m1b, m2b);
  m0b = _mm_xor_si128(m0b, m2b);
  e1a = _mm_sha1nexte_epu32(e1a, m3a);
  e0a = abcda;
  m0a = _mm_sha1msg2_epu32(m0a, m3a);
  abcda = _mm_sha1rnds4_epu32(abcda, e1a, 2);
  m2a = _mm_sha1msg1_epu32(m2a, m3a);
  m1a = _mm_xor_si128(m1a, m3a);
  e1b = _mm_sha1nexte_epu32(e1b, m3b);
  e0b = abcdb;
  m0b = _mm_sha1msg2_epu32(m0b, m3b);
  abcdb = _mm_sha1rnds4_epu32(abcdb, e1b, 2);
  m2b = _mm_sha1msg1_epu32(m2b, m3b);
  m1b = _mm_xor_si128(m1b, m3b);
  e0a = _mm_sha1nexte_epu32(e0a, m0a);
  e1a = abcda;
  m1a = _mm_sha1msg2_epu32(m1a, m0a);
  abcda = _mm_sha1rnds4_epu32(abcda, e0a, 2);
  m3a = _mm_sha1msg1_epu32(m3a, m0a);
  m2a = _mm_xor_si128(m2a, m0a);
  e0b = _mm_sha1nexte_epu32(e0b, m0b);
  e1b = abcdb;
  m1b = _mm_sha1msg2_epu32(m1b, m0b);
  abcdb = _mm_sha1rnds4_epu32(abcdb, e0b, 2);
  m3b = _mm_sha1msg1_epu32(m3b, m0b);
  m2b = _mm_xor_si128(m2b, m0b);
  e1a = _mm_sha1nexte_epu32(e1a, m1a);
  e0a = abcda;
  m2a = _mm_sha1msg2_epu32(m2a, m1a);
  abcda = _mm_sha1rnds4_epu32(abcda, e1a, 2);
  m0a = _mm_sha1msg1_epu32(m0a, m1a);
  m3a = _mm_xor_si128(m3a, m1a);
  e1b = _mm_sha1nexte_epu32(e1b, m1b);
  e0b = abcdb;
  m2b = _mm_sha1msg2_epu32(m2b, m1b);
  abcdb = _mm_sha1rnds4_epu32(abcdb, e1b, 2);
  m0b = _mm_sha1msg1_epu32(m0b, m1b);
  m3b = _mm_xor_si128(m3b, m1b);
  e0a = _mm_sha1nexte_epu32(e0a, m2a);
  e1a = abcda;
  m3a = _mm_sha1msg2_epu32(m3a, m2a);
  abcda = _mm_sha1rnds4_epu32(abcda, e0a, 2);
  m1a = _mm_sha1msg1_epu32(m1a, m2a);
  m0a = _mm_xor_si128(m0a, m2a);
  e0b = _mm_sha1nexte_epu32(e0b, m2b);
  e1b = abcdb;
  m3b = _mm_sha1msg2_epu32(m3b, m2b);
  abcdb = _mm_sha1rnds4_epu32(abcdb, e0b, 2);
  m1b = _mm_sha1msg1_epu32(m1b, m2b);
  m0b = _mm_xor_si128(m0b, m2b);
  e1a = _mm_sha1nexte_epu32(e1a, m3a);
  e0a = abcda;
  m0a = _mm_sha1msg2_epu32(m0a, m3a);
  abcda = _mm_sha1rnds4_epu32(abcda, e1a, 3);
  m2a = _mm_sha1msg1_epu32(m2a, m3a);
  m1a = _mm_xor_si128(m1a, m3a);
  e1b = _mm_sha1nexte_epu32(e1b, m3b);
  e0b = abcdb;
  m0b = _mm_sha1msg2_epu32(m0b, m3b);
  abcdb = _mm_sha1rnds4_epu32(abcdb, e1b, 3);
  m2b = _mm_sha1msg1_epu32(m2b, m3b);
  m1b = _mm_xor_si128(m1b, m3b);
  e0a = _mm_sha1nexte_epu32(e0a, m0a);
  e1a = abcda;
  m1a = _mm_sha1msg2_epu32(m1a, m0a);
  abcda = _mm_sha1rnds4_epu32(abcda, e0a, 3);
  m3a = _mm_sha1msg1_epu32(m3a, m0a);
  m2a = _mm_xor_si128(m2a, m0a);
  e0b = _mm_sha1nexte_epu32(e0b, m0b);
  e1b = abcdb;
  m1b = _mm_sha1msg2_epu32(m1b, m0b);
  abcdb = _mm_sha1rnds4_epu32(abcdb, e0b, 3);
  m3b = _mm_sha1msg1_epu32(m3b, m0b);
  m2b = _mm_xor_si128(m2b, m0b);
  e1a = _mm_sha1nexte_epu32(e1a, m1a);
  e0a = abcda;
  m2a = _mm_sha1msg2_epu32(m2a, m1a);
  abcda = _mm_sha1rnds4_epu32(abcda, e1a, 3);
  m3a = _mm_xor_si128(m3a, m1a);
  e1b = _mm_sha1nexte_epu32(e1b, m1b);
  e0b = abcdb;
  m2b = _mm_sha1msg2_epu32(m2b, m1b);
  abcdb = _mm_sha1rnds4_epu32(abcdb, e1b, 3);
  m3b = _mm_xor_si128(m3b, m1b);
  e0a = _mm_sha1nexte_epu32(e0a, m2a);
  e1a = abcda;
  m3a = _mm_sha1msg2_epu32(m3a, m2a);
  abcda = _mm_sha1rnds4_epu32(abcda, e0a, 3);
  e0b = _mm_sha1nexte_epu32(e0b, m2b);
  e1b = abcdb;
  m3b = _mm_sha1msg2_epu32(m3b, m2b);
  abcdb = _mm_sha1rnds4_epu32(abcdb, e0b, 3);
  e1a = _mm_sha1nexte_epu32(e1a, m3a);
  e0a = abcda;
  abcda = _mm_sha1rnds4_epu32(abcda, e1a, 3);
  e1b = _mm_sha1nexte_epu32(e1b, m3b);
  e0b = abcdb;
  abcdb = _mm_sha1rnds4_epu32(abcdb, e1b, 3);
  e0a = _mm_sha1nexte_epu32(e0a, e0a_save);
  abcda = _mm_add_epi32(abcda, abcda_save);
  _mm_storeu_si128((__m128i *)statea, _mm_shuffle_epi32(abcda, 0x1B));
  statea[4] = (uint32_t)_mm_extract_epi32(e0a, 3);
  e0b = _mm_sha1nexte_epu32(e0b, e0b_save);
  abcdb = _mm_add_epi32(abcdb, abcdb_save);
  _mm_storeu_si128((__m128i *)stateb, _mm_shuffle_epi32(abcdb, 0x1B));
  stateb[4] = (uint32_t)_mm_extract_epi32(e0b, 3);
}
#endif

static void sha1_be(const uint32_t h[5], uint8_t out[20]) {
  for (int i = 0; i < 5; i++) {
    out[4 * i] = (uint8_t)(h[i] >> 24);
    out[4 * i + 1] = (uint8_t)(h[i] >> 16);
    out[4 * i + 2] = (uint8_t)(h[i] >> 8);
    out[4 * i + 3] = (uint8_t)h[i];
  }
}

#ifdef ZS_X86
/* The digest of a state that absorbed `done` bytes (whole blocks) and then `m` (n bytes). */
static void sha1_ni_finish(const uint32_t st[5], uint64_t done, const uint8_t *m, size_t n,
                           uint8_t out[20]) {
  uint32_t h[5];
  memcpy(h, st, sizeof h);
  uint64_t bits = (done + n) * 8;
  for (; n >= 64; m += 64, n -= 64) sha1_ni_block(h, m);
  uint8_t b[128] = {0};
  memcpy(b, m, n);
  b[n] = 0x80;
  size_t len = n + 1 + 8 <= 64 ? 64 : 128;
  for (int i = 0; i < 8; i++) b[len - 1 - i] = (uint8_t)(bits >> (8 * i));
  sha1_ni_block(h, b);
  if (len == 128) sha1_ni_block(h, b + 64);
  sha1_be(h, out);
}
#endif

/**
 * PBKDF2-HMAC-SHA1 of `pass` with `salt` and `iters` iterations into `out` (`out_len` bytes):
 * 0; -ENOSYS without the SHA extensions; -EINVAL on bad arguments.
 */
ZS_EXPORT int32_t zs_pbkdf2_sha1(const uint8_t *pass, uint32_t pass_len, const uint8_t *salt,
                                 uint32_t salt_len, uint32_t iters, uint8_t *out,
                                 uint32_t out_len) {
#ifdef ZS_X86
  static int sha_ni = -1;
  if (sha_ni < 0) sha_ni = has_sha_ni();
  if (!sha_ni) return -ENOSYS;
  if (iters == 0 || salt_len > 1024 || out_len == 0 || out_len > 20u * 255) return -EINVAL;
  static const uint32_t iv[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
  uint8_t key[64] = {0}, pad[64];
  if (pass_len > 64) sha1_ni_finish(iv, 0, pass, pass_len, key);
  else memcpy(key, pass, pass_len);
  uint32_t inner[5], outer[5];
  memcpy(inner, iv, sizeof iv);
  memcpy(outer, iv, sizeof iv);
  for (int i = 0; i < 64; i++) pad[i] = key[i] ^ 0x36;
  sha1_ni_block(inner, pad);
  for (int i = 0; i < 64; i++) pad[i] = key[i] ^ 0x5c;
  sha1_ni_block(outer, pad);
  uint8_t msg[1024 + 4];
  memcpy(msg, salt, salt_len);
  /* U_k = HMAC(U_k-1) after the first: one padded block each for the inner and outer hash
   * (64 + 20 bytes hashed: 672 bits). */
  uint8_t bi[64] = {0}, bo[64] = {0};
  bi[20] = bo[20] = 0x80;
  bi[62] = bo[62] = (uint8_t)(672 >> 8);
  bi[63] = bo[63] = (uint8_t)(672 & 0xff);
  /* Output blocks 1 and 2 together (a 32-byte key is both), then any others one by one. */
  uint32_t at = 0, block = 1;
  if (out_len > 20) {
    uint8_t u[2][20], t[2][20], bi2[2][64], bo2[2][64];
    for (int j = 0; j < 2; j++) {
      msg[salt_len] = 0;
      msg[salt_len + 1] = 0;
      msg[salt_len + 2] = 0;
      msg[salt_len + 3] = (uint8_t)(j + 1);
      sha1_ni_finish(inner, 64, msg, salt_len + 4, bo);
      sha1_ni_finish(outer, 64, bo, 20, u[j]);
      memcpy(t[j], u[j], 20);
      memcpy(bi2[j], bi, 64);
      memcpy(bo2[j], bi, 64);
      memcpy(bi2[j], u[j], 20);
    }
    for (uint32_t k = 1; k < iters; k++) {
      uint32_t ha[5], hb[5];
      memcpy(ha, inner, sizeof ha);
      memcpy(hb, inner, sizeof hb);
      sha1_ni_block2(ha, bi2[0], hb, bi2[1]);
      sha1_be(ha, bo2[0]);
      sha1_be(hb, bo2[1]);
      memcpy(ha, outer, sizeof ha);
      memcpy(hb, outer, sizeof hb);
      sha1_ni_block2(ha, bo2[0], hb, bo2[1]);
      sha1_be(ha, bi2[0]);
      sha1_be(hb, bi2[1]);
      for (int i = 0; i < 20; i++) {
        t[0][i] ^= bi2[0][i];
        t[1][i] ^= bi2[1][i];
      }
    }
    memcpy(out, t[0], 20);
    memcpy(out + 20, t[1], out_len - 20 < 20 ? out_len - 20 : 20);
    at = 40;
    block = 3;
  }
  for (; at < out_len; block++, at += 20) {
    msg[salt_len] = (uint8_t)(block >> 24);
    msg[salt_len + 1] = (uint8_t)(block >> 16);
    msg[salt_len + 2] = (uint8_t)(block >> 8);
    msg[salt_len + 3] = (uint8_t)block;
    uint8_t u[20], t[20];
    sha1_ni_finish(inner, 64, msg, salt_len + 4, bo);
    sha1_ni_finish(outer, 64, bo, 20, u);
    bo[20] = 0x80; /* sha1_ni_finish wrote only 20 bytes: the padding stays */
    memcpy(t, u, 20);
    memcpy(bi, u, 20);
    for (uint32_t k = 1; k < iters; k++) {
      uint32_t h[5];
      memcpy(h, inner, sizeof h);
      sha1_ni_block(h, bi);
      sha1_be(h, bo);
      memcpy(h, outer, sizeof h);
      sha1_ni_block(h, bo);
      sha1_be(h, bi);
      for (int i = 0; i < 20; i++) t[i] ^= bi[i];
    }
    memcpy(out + at, t, out_len - at < 20 ? out_len - at : 20);
  }
  return 0;
#else
  (void)pass;
  (void)pass_len;
  (void)salt;
  (void)salt_len;
  (void)iters;
  (void)out;
  (void)out_len;
  return -ENOSYS;
#endif
}

/*
 * ---------------------------------------------------------------------------------------------
 * redup: a stream written from record headers in memory and payloads that lie in the input file
 * ---------------------------------------------------------------------------------------------
 */

#ifdef __linux__
/* Copies len bytes of in_fd at off to out_fd through memory (an output that takes no
 * sendfile); 0, -EIO when in_fd ends first, or -errno. */
static int copy_by_read(int32_t out_fd, int32_t in_fd, uint64_t off, uint64_t len,
                        uint64_t *done) {
  enum { BOUNCE = 1 << 20 };
  uint8_t *buf = malloc(BOUNCE);
  if (buf == NULL) return -ENOMEM;
  int err = 0;
  while (len > 0) {
    const uint64_t want = len < BOUNCE ? len : BOUNCE;
    const int64_t n = zs_pread(in_fd, buf, want, off);
    if (n < 0 || (uint64_t)n < want) {
      err = n < 0 ? (int)n : -EIO;
      break;
    }
    if ((err = write_all(out_fd, buf, want)) < 0) break;
    *done += want;
    off += want;
    len -= want;
  }
  free(buf);
  return err;
}
#endif

/*
 * Writes count pieces to out_fd at its position, one after another: piece i is pieces[2i + 1]
 * bytes from pieces[2i] (doubles: exact below 2^53, no BigInt per piece on the JavaScript
 * side), a byte offset in in_fd when it is 0 or more, else bytes of mem from offset
 * -(pieces[2i] + 1). Into a file or a device from a regular file (gather_by_mapping), the span
 * of in_fd that the pieces cover is mapped once (not read in: the output's copy faults in what
 * it reads, and /dev/null reads nothing) and everything goes by writev, up to 512 pieces a
 * call; otherwise (a pipe or a socket: sendfile moves page references instead of copying, or
 * ZSEND_NO_MMAP=1, or a span over 64 GiB) memory pieces go by writev and file pieces by
 * sendfile, or through memory for an output that takes no sendfile. *done gets the bytes
 * written. Returns 0, -EIO when in_fd ends before a piece does, -ERANGE for an offset or length
 * that is not one, or -errno.
 */
ZS_EXPORT int32_t zs_write_pieces(int32_t out_fd, int32_t in_fd, const uint8_t *mem,
                                  uint64_t mem_len, const double *pieces, uint32_t count,
                                  uint64_t *done) {
  *done = 0;
#ifdef __linux__
  enum { PIECES = 512 };
  const double LIMIT = 9007199254740992.0;
  uint64_t lo = UINT64_MAX, hi = 0;
  for (uint32_t i = 0; i < count; i++) {
    const double at = pieces[2 * i], len = pieces[2 * i + 1];
    if (!(len >= 0 && len < LIMIT && at > -LIMIT && at < LIMIT)) return -ERANGE;
    if (at < 0) {
      if ((uint64_t)(-at - 1) + (uint64_t)len > mem_len) return -ERANGE;
    } else if (len > 0) {
      if ((uint64_t)at < lo) lo = (uint64_t)at;
      if ((uint64_t)at + (uint64_t)len > hi) hi = (uint64_t)at + (uint64_t)len;
    }
  }
  uint8_t *map = NULL;
  uint64_t map_at = 0, map_len = 0;
  if (lo < hi) {
    struct stat st;
    if (fstat(in_fd, &st) < 0) return -errno;
    if (S_ISREG(st.st_mode) && hi > (uint64_t)st.st_size) return -EIO; /* it shrank */
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    if (hi - lo <= ((uint64_t)1 << 36) && gather_by_mapping(out_fd, in_fd)) {
      map_at = lo & ~(page - 1);
      map_len = hi - map_at;
      void *m = mmap(NULL, map_len, PROT_READ, MAP_PRIVATE, in_fd, (off_t)map_at);
      if (m != MAP_FAILED) map = m; /* else: by sendfile */
    }
  }
  struct iovec v[PIECES];
  int n = 0, err = 0;
  int by_sendfile = 1; /* until the output refuses it */
  for (uint32_t i = 0; i < count && err == 0; i++) {
    const double at = pieces[2 * i];
    const uint64_t len = (uint64_t)pieces[2 * i + 1];
    if (len == 0) continue;
    if (at < 0 || map != NULL) {
      if (n == PIECES) {
        if ((err = writev_all(out_fd, v, n, done)) < 0) break;
        n = 0;
      }
      v[n++] = (struct iovec){
          at < 0 ? (void *)(mem + (uint64_t)(-at - 1)) : (void *)(map + ((uint64_t)at - map_at)),
          (size_t)len};
      continue;
    }
    if ((err = writev_all(out_fd, v, n, done)) < 0) break;
    n = 0;
    if (by_sendfile) {
      const int64_t r = zs_sendfile(out_fd, in_fd, (uint64_t)at, len);
      if (r >= 0) {
        *done += len;
        continue;
      }
      if (r != -EINVAL && r != -ENOSYS) {
        err = (int)r;
        break;
      }
      by_sendfile = 0; /* nothing of this piece was written: through memory from now on */
    }
    err = copy_by_read(out_fd, in_fd, (uint64_t)at, len, done);
  }
  if (err == 0) err = writev_all(out_fd, v, n, done);
  if (map != NULL) munmap(map, map_len);
  return err;
#else
  (void)out_fd;
  (void)in_fd;
  (void)mem;
  (void)mem_len;
  (void)pieces;
  (void)count;
  return -ENOSYS;
#endif
}

/* ---- Extract: file data copied from packs, small files made whole a batch per call --------- */

/*
 * Copies len bytes of in_fd at in_off to out_fd at out_off, as zs_copy_range, but where the two
 * offsets lie differently within a page (a block of a pack: packs hold blocks back to back),
 * by writes straight from the source's pages mapped a window at a time: copy_file_range would
 * splice such a range through a pipe at about 1.4 times the CPU, and no file system shares
 * blocks that do not line up. The mapping is only ever read by the kernel (in pwrite), so a
 * file that shrinks under it makes the write fail (EFAULT), never a SIGBUS. Returns len or
 * -errno; falls back to zs_copy_range where the source cannot be mapped.
 */
ZS_EXPORT int64_t zs_copy_data(int32_t in_fd, uint64_t in_off, int32_t out_fd, uint64_t out_off,
                               uint64_t len) {
  /* Windows of 1 MiB never hold a whole 2 MiB huge page of the page cache, which the kernel
   * may then map by PMD: writes from such windows (2 MiB and up) were at times 4 to 10 times
   * slower here (Linux 6.18, ext4 with large folios). */
  enum { MAPPED_MIN = 64 << 10, WINDOW = 1 << 20 };
  const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
  if (len < MAPPED_MIN || ((in_off ^ out_off) & (page - 1)) == 0) {
    return zs_copy_range(in_fd, in_off, out_fd, out_off, len);
  }
  uint64_t done = 0;
  while (done < len) {
    const uint64_t at = in_off + done, base = at & ~(page - 1);
    const uint64_t n = len - done < WINDOW ? len - done : WINDOW;
    const size_t map_len = (size_t)(n + (at - base));
    void *m = mmap(NULL, map_len, PROT_READ, MAP_SHARED | MAP_POPULATE, in_fd, (off_t)base);
    if (m == MAP_FAILED) {
      if (done == 0 && (errno == ENODEV || errno == EACCES || errno == EINVAL)) {
        return zs_copy_range(in_fd, in_off, out_fd, out_off, len);
      }
      return -errno;
    }
    int64_t r = zs_pwrite(out_fd, (const uint8_t *)m + (at - base), n, out_off + done);
    munmap(m, map_len);
    if (r < 0) return r == -EFAULT ? -EIO : r; /* EFAULT: the source ends before the range */
    done += n;
  }
  return (int64_t)len;
}

/*
 * Writes `count` files described by `desc` (doubles, as JavaScript holds its numbers), each
 * made new and complete: created (O_EXCL, never through an existing name, mode 0600), its runs
 * written, its length set, then its owner, mode and times, and closed. A file's record:
 * path offset in `paths` (NUL-terminated), length, perm, uid, gid, flags (1 chown, 2 set the
 * length), atime s, ns, mtime s, ns, run count; then four doubles a run: source fd (-1: the run
 * is `data` from the source offset), source offset, length, offset in the file.
 * `out` takes three int32 a file: 0 or errno, the step that failed (ZS_WF_*), and the errno of
 * removing a file that failed once made (0 when removed). A failed file is removed: none is
 * left short. Returns the count of files that failed. On a thread of its own (a promise): the
 * caller goes on walking the tree while the kernel makes the files.
 */
enum { ZS_WF_OPEN = 1, ZS_WF_COPY, ZS_WF_WRITE, ZS_WF_TRUNCATE, ZS_WF_CHOWN, ZS_WF_CHMOD,
       ZS_WF_UTIMES, ZS_WF_CLOSE };

ZS_EXPORT int32_t zs_write_files(const double *desc, uint32_t count, const char *paths,
                                 const uint8_t *data, int32_t *out) {
  int32_t failed = 0;
  size_t at = 0;
  for (uint32_t i = 0; i < count; i++) {
    const double *f = desc + at;
    const char *path = paths + (size_t)f[0];
    uint32_t flags = (uint32_t)f[5], runs = (uint32_t)f[10];
    const double *run = f + 11;
    at += 11 + 4 * (size_t)runs;
    int32_t *o = out + 3 * (size_t)i;
    o[0] = o[1] = o[2] = 0;
    int fd;
    do fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
      o[0] = errno;
      o[1] = ZS_WF_OPEN;
      failed++;
      continue;
    }
    int err = 0, step = 0;
    for (uint32_t r = 0; r < runs && err == 0; r++, run += 4) {
      int32_t src = (int32_t)run[0];
      uint64_t from = (uint64_t)run[1], len = (uint64_t)run[2], to = (uint64_t)run[3];
      int64_t n = src < 0 ? zs_pwrite(fd, data + from, len, to)
                          : zs_copy_data(src, from, fd, to, len);
      if (n < 0) err = (int)-n, step = src < 0 ? ZS_WF_WRITE : ZS_WF_COPY;
    }
    if (err == 0 && (flags & 2)) {
      int32_t r = zs_ftruncate(fd, (uint64_t)f[1]);
      if (r < 0) err = -r, step = ZS_WF_TRUNCATE;
    }
    /* The owner before the mode: a chown clears the set-id bits. */
    if (err == 0 && (flags & 1) && fchown(fd, (uid_t)f[3], (gid_t)f[4]) != 0) {
      err = errno, step = ZS_WF_CHOWN;
    }
    if (err == 0 && fchmod(fd, (mode_t)f[2]) != 0) err = errno, step = ZS_WF_CHMOD;
    if (err == 0) {
      struct timespec t[2] = {{(time_t)f[6], (long)f[7]}, {(time_t)f[8], (long)f[9]}};
      if (futimens(fd, t) != 0) err = errno, step = ZS_WF_UTIMES;
    }
    if (close(fd) != 0 && err == 0 && errno != EINTR) err = errno, step = ZS_WF_CLOSE;
    if (err != 0) {
      o[0] = err;
      o[1] = step;
      if (unlink(path) != 0 && errno != ENOENT) o[2] = errno;
      failed++;
    }
  }
  return failed;
}
