/*
 * BLAKE3 in hash mode with the default 32-byte output: the content hash of zsend's block store.
 * Part of build/libzsend_native.so (scripts/build_native.sh compiles this file together with
 * zsend_native.c); the pure-TypeScript twin is core/blake3.ts, the loader
 * io/native/blake3_native.ts.
 *
 * Written from the BLAKE3 specification:
 *
 *   - the input is cut into 1024-byte chunks (the last may be shorter; the empty input is one
 *     empty chunk), each chunk into 64-byte blocks (the last zero-padded, its real length
 *     passed as block_len);
 *   - a chunk's chaining value starts as the IV (SHA-256's) and is replaced by the compression
 *     of each block with counter = the chunk's index, CHUNK_START on its first block and
 *     CHUNK_END on its last;
 *   - chaining values are combined in a binary tree whose left subtrees are complete: the
 *     left child of a node over n > 1 chunks covers the largest power of two < n of them; a
 *     parent compresses left || right (a 64-byte block) with the IV as key, counter 0,
 *     block_len 64 and the PARENT flag;
 *   - the root (the only chunk's last block, or the top parent) also gets ROOT, and the
 *     hash is the first 8 words of its output, little-endian.
 *
 * The compression function: v = cv[0..7], IV[0..3], counter lo, counter hi, block_len, flags;
 * 7 rounds of G over the columns (0,4,8,12) (1,5,9,13) (2,6,10,14) (3,7,11,15) and the
 * diagonals (0,5,10,15) (1,6,11,12) (2,7,8,13) (3,4,9,14), message words in pairs m[2i],
 * m[2i+1]; between rounds the message words are permuted by
 * [2,6,3,10,7,0,4,13,1,11,12,5,9,14,15,8]; the new chaining value is v[i] ^ v[i+8].
 *
 * ---------------------------------------------------------------------------------------------
 * How it is computed here
 * ---------------------------------------------------------------------------------------------
 * The vector kernels run one independent compression per SIMD lane (W = 16 lanes of 32 bits
 * with AVX-512, 8 with AVX2, 4 with SSE4.1): W consecutive chunks at once, the message words
 * transposed so that vector i holds word i of every lane's block; then the parents of one tree
 * level, W at a time.
 *
 * Level-wise pairing gives exactly BLAKE3's tree. Pair the nodes of a level from the left,
 * (0,1) (2,3) ..., carrying an odd last node up unchanged, and repeat until one node is left.
 * By induction on the level, a node made at level j covers the chunks [i 2^j, (i+1) 2^j) cut
 * to n: pairing at level j joins [2i 2^j, (2i+1) 2^j) with [(2i+1) 2^j, (2i+2) 2^j), and a
 * carried node is the last of its level, so also the last of the next. Now take the root, made
 * at level L by joining the last two nodes of level L-1, which cover [0, 2^(L-1)) and
 * [2^(L-1), n); there were exactly two, so 2^(L-1) < n <= 2^L: the left child covers the
 * largest power of two < n, and it is complete (a full aligned block is paired exactly like a
 * perfect tree). The right child is the level-wise tree of the chunks after it: nodes inside
 * [2^(L-1), n) pair among themselves, since 2^(L-1) is a multiple of every 2^j with j < L,
 * and the carries happen at the same (last) places. By induction on n, the level-wise tree is
 * the left-complete tree. (tests/blake3_test.ts also checks the two shapes for every n up to
 * 4096, and every digest against b3sum.)
 *
 * The levels are kept in a "structure of arrays" (word w of node i at cvs[w * CAP + i]), so
 * the kernels read and write whole vectors: the parents of nodes 2p .. 2p+2W-1 take word w
 * of their left children from the even elements of two vectors and of their right children
 * from the odd elements, and write their own word w as one vector at position p. A level is
 * computed in place: a batch writes positions [p, p+W) after loading [2p, 2p+2W), and later
 * batches read only from 2(p+W) on.
 *
 * Inputs are hashed in groups of GROUP_CHUNKS chunks (512 KiB), each reduced level-wise to
 * one chaining value (a complete aligned subtree of the big tree, or the last, partial one);
 * the groups' values are combined with the usual stack (merge two equal subtrees as soon as
 * more input is known to follow, then the right spine at the end), which builds the same
 * left-complete tree over the groups and bounds the memory to one group's values.
 *
 * A level's last few chunks or parents (fewer than W) go to the narrowest kernel that takes
 * them all in one call, its spare lanes hashing copies; one goes to the scalar code.
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#define B3_X86 1
#include <immintrin.h>
#endif

#define ZS_EXPORT __attribute__((visibility("default")))

enum { CHUNK_START = 1, CHUNK_END = 2, PARENT = 4, ROOT = 8 };

#define CHUNK_LEN 1024
#define BLOCK_LEN 64
#define GROUP_CHUNKS 512 /* chunks reduced level-wise at a time (a power of two) */
#define MAX_LANES 16
#define PAD (2 * MAX_LANES) /* room for a kernel's spare lanes past a level's end */
#define CAP (GROUP_CHUNKS + PAD)

static const uint32_t IV[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

/* SCHED[r][i]: the message word that takes position i in round r (the permutation applied r
 * times, so that no round moves the words themselves). */
static const uint8_t SCHED[7][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8},
    {3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1},
    {10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6},
    {12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4},
    {9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7},
    {11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13},
};

/*
 * The rounds, shared by the scalar code and every vector width: P is a prefix naming the
 * operations P##_ADD, P##_XOR and P##_ROR16 / 12 / 8 / 7 (rotate right); v and m are arrays of
 * 16 words (or vectors) indexed by constants only, so they live in registers.
 */
#define G(P, v, a, b, c, d, x, y)                                                             \
  do {                                                                                         \
    v[a] = P##_ADD(P##_ADD(v[a], v[b]), x);                                                    \
    v[d] = P##_ROR16(P##_XOR(v[d], v[a]));                                                     \
    v[c] = P##_ADD(v[c], v[d]);                                                                \
    v[b] = P##_ROR12(P##_XOR(v[b], v[c]));                                                     \
    v[a] = P##_ADD(P##_ADD(v[a], v[b]), y);                                                    \
    v[d] = P##_ROR8(P##_XOR(v[d], v[a]));                                                      \
    v[c] = P##_ADD(v[c], v[d]);                                                                \
    v[b] = P##_ROR7(P##_XOR(v[b], v[c]));                                                      \
  } while (0)

#define ROUND(P, v, m, r)                                                                      \
  do {                                                                                         \
    G(P, v, 0, 4, 8, 12, m[SCHED[r][0]], m[SCHED[r][1]]);                                      \
    G(P, v, 1, 5, 9, 13, m[SCHED[r][2]], m[SCHED[r][3]]);                                      \
    G(P, v, 2, 6, 10, 14, m[SCHED[r][4]], m[SCHED[r][5]]);                                     \
    G(P, v, 3, 7, 11, 15, m[SCHED[r][6]], m[SCHED[r][7]]);                                     \
    G(P, v, 0, 5, 10, 15, m[SCHED[r][8]], m[SCHED[r][9]]);                                     \
    G(P, v, 1, 6, 11, 12, m[SCHED[r][10]], m[SCHED[r][11]]);                                   \
    G(P, v, 2, 7, 8, 13, m[SCHED[r][12]], m[SCHED[r][13]]);                                    \
    G(P, v, 3, 4, 9, 14, m[SCHED[r][14]], m[SCHED[r][15]]);                                    \
  } while (0)

#define ROUNDS(P, v, m)                                                                        \
  do {                                                                                         \
    ROUND(P, v, m, 0);                                                                         \
    ROUND(P, v, m, 1);                                                                         \
    ROUND(P, v, m, 2);                                                                         \
    ROUND(P, v, m, 3);                                                                         \
    ROUND(P, v, m, 4);                                                                         \
    ROUND(P, v, m, 5);                                                                         \
    ROUND(P, v, m, 6);                                                                         \
  } while (0)

/* ------------------------------------------------------------------------------------------ */
/* Scalar                                                                                     */
/* ------------------------------------------------------------------------------------------ */

#define S_ADD(a, b) ((uint32_t)((a) + (b)))
#define S_XOR(a, b) ((uint32_t)((a) ^ (b)))
#define S_ROR(x, n) ((uint32_t)(((x) >> (n)) | ((x) << (32 - (n)))))
#define S_ROR16(x) S_ROR(x, 16)
#define S_ROR12(x) S_ROR(x, 12)
#define S_ROR8(x) S_ROR(x, 8)
#define S_ROR7(x) S_ROR(x, 7)

static inline uint32_t le32(const uint8_t *p) {
  uint32_t w;
  memcpy(&w, p, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  w = __builtin_bswap32(w);
#endif
  return w;
}

/* The first 8 output words of one compression; out may be cv. */
static void compress(const uint32_t cv[8], const uint32_t m[16], uint64_t counter,
                     uint32_t block_len, uint32_t flags, uint32_t out[8]) {
  uint32_t v[16] = {cv[0],  cv[1],  cv[2],           cv[3],
                    cv[4],  cv[5],  cv[6],           cv[7],
                    IV[0],  IV[1],  IV[2],           IV[3],
                    (uint32_t)counter, (uint32_t)(counter >> 32), block_len, flags};
  ROUNDS(S, v, m);
  for (int i = 0; i < 8; i++) out[i] = v[i] ^ v[i + 8];
}

static void load_block(const uint8_t *p, uint32_t m[16]) {
  for (int i = 0; i < 16; i++) m[i] = le32(p + 4 * i);
}

/* The chaining value of one chunk of len bytes (0..1024); extra is ROOT for a lone chunk. */
static void chunk_cv(const uint8_t *p, size_t len, uint64_t counter, uint32_t extra,
                     uint32_t cv[8]) {
  uint32_t m[16], flags = CHUNK_START;
  memcpy(cv, IV, sizeof IV);
  for (; len > BLOCK_LEN; p += BLOCK_LEN, len -= BLOCK_LEN, flags = 0) {
    load_block(p, m);
    compress(cv, m, counter, BLOCK_LEN, flags, cv);
  }
  uint8_t last[BLOCK_LEN] = {0};
  if (len > 0) memcpy(last, p, len); /* p may be NULL when the input is empty */
  load_block(last, m);
  compress(cv, m, counter, (uint32_t)len, flags | CHUNK_END | extra, cv);
}

static void parent_cv(const uint32_t left[8], const uint32_t right[8], uint32_t extra,
                      uint32_t out[8]) {
  uint32_t m[16];
  memcpy(m, left, 32);
  memcpy(m + 8, right, 32);
  compress(IV, m, 0, BLOCK_LEN, PARENT | extra, out);
}

/*
 * Kernels: `chunks` hashes W whole chunks (in[i], counters counter + i) into positions
 * [0, W) of a level (word w of lane i at cvs[w * stride + i]); `parents` hashes the W parents
 * of the nodes at src[0 .. 2W) into dst[0 .. W).
 */
typedef void (*chunks_fn)(const uint8_t *const *in, uint64_t counter, uint32_t *cvs,
                          size_t stride);
typedef void (*parents_fn)(const uint32_t *src, uint32_t *dst, size_t stride);

static void chunks_1(const uint8_t *const *in, uint64_t counter, uint32_t *cvs, size_t stride) {
  uint32_t cv[8];
  chunk_cv(in[0], CHUNK_LEN, counter, 0, cv);
  for (int w = 0; w < 8; w++) cvs[w * stride] = cv[w];
}

static void parents_1(const uint32_t *src, uint32_t *dst, size_t stride) {
  uint32_t m[16], cv[8];
  for (int w = 0; w < 8; w++) {
    m[w] = src[w * stride];
    m[8 + w] = src[w * stride + 1];
  }
  compress(IV, m, 0, BLOCK_LEN, PARENT, cv);
  for (int w = 0; w < 8; w++) dst[w * stride] = cv[w];
}

/*
 * The vector kernels' bodies, for a prefix P that also names P##_SET1(x), P##_LOAD(p),
 * P##_STORE(p, x) (unaligned), P##_EVENS(a, b) / P##_ODDS(a, b) (the even / odd elements
 * of a then b), P##_END() (leaves the vector state clean), and P##_load_msg(in, off, m) (word
 * i of each lane's block at in[lane] + off into m[i]).
 */
#define CHUNKS_BODY(P, W, VT)                                                                 \
  do {                                                                                         \
    uint32_t lo[W], hi[W];                                                                     \
    for (int i = 0; i < W; i++) {                                                              \
      lo[i] = (uint32_t)(counter + (uint64_t)i);                                               \
      hi[i] = (uint32_t)((counter + (uint64_t)i) >> 32);                                       \
    }                                                                                          \
    const VT clo = P##_LOAD(lo), chi = P##_LOAD(hi);                                           \
    VT cv[8];                                                                                  \
    for (int i = 0; i < 8; i++) cv[i] = P##_SET1(IV[i]);                                       \
    for (int b = 0; b < CHUNK_LEN / BLOCK_LEN; b++) {                                          \
      VT m[16], v[16];                                                                         \
      P##_load_msg(in, (size_t)b * BLOCK_LEN, m);                                              \
      for (int i = 0; i < 8; i++) v[i] = cv[i];                                                \
      for (int i = 0; i < 4; i++) v[8 + i] = P##_SET1(IV[i]);                                  \
      v[12] = clo;                                                                             \
      v[13] = chi;                                                                             \
      v[14] = P##_SET1(BLOCK_LEN);                                                             \
      v[15] = P##_SET1((b == 0 ? CHUNK_START : 0) |                                            \
                       (b == CHUNK_LEN / BLOCK_LEN - 1 ? CHUNK_END : 0));                      \
      ROUNDS(P, v, m);                                                                         \
      for (int i = 0; i < 8; i++) cv[i] = P##_XOR(v[i], v[i + 8]);                             \
    }                                                                                          \
    for (int i = 0; i < 8; i++) P##_STORE(cvs + i * stride, cv[i]);                            \
    P##_END();                                                                                 \
  } while (0)

#define PARENTS_BODY(P, W, VT)                                                                \
  do {                                                                                         \
    VT m[16], v[16];                                                                           \
    for (int w = 0; w < 8; w++) {                                                              \
      const VT a = P##_LOAD(src + w * stride), b = P##_LOAD(src + w * stride + W);             \
      m[w] = P##_EVENS(a, b);                                                                  \
      m[8 + w] = P##_ODDS(a, b);                                                               \
    }                                                                                          \
    for (int i = 0; i < 8; i++) v[i] = P##_SET1(IV[i]);                                        \
    for (int i = 0; i < 4; i++) v[8 + i] = P##_SET1(IV[i]);                                    \
    v[12] = P##_SET1(0);                                                                       \
    v[13] = P##_SET1(0);                                                                       \
    v[14] = P##_SET1(BLOCK_LEN);                                                               \
    v[15] = P##_SET1(PARENT);                                                                  \
    ROUNDS(P, v, m);                                                                           \
    for (int i = 0; i < 8; i++) P##_STORE(dst + i * stride, P##_XOR(v[i], v[i + 8]));          \
    P##_END();                                                                                 \
  } while (0)

#ifdef B3_X86

/* ------------------------------------------------------------------------------------------ */
/* SSE4.1: 4 lanes                                                                            */
/* ------------------------------------------------------------------------------------------ */

#define TGT_X __attribute__((target("sse4.1")))
#define TGT_X_INLINE __attribute__((target("sse4.1"), always_inline)) static inline

#define X_ADD(a, b) _mm_add_epi32(a, b)
#define X_XOR(a, b) _mm_xor_si128(a, b)
#define X_SHUF16 _mm_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13)
#define X_SHUF8 _mm_setr_epi8(1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12)
#define X_ROR16(x) _mm_shuffle_epi8(x, X_SHUF16)
#define X_ROR8(x) _mm_shuffle_epi8(x, X_SHUF8)
#define X_ROR12(x) x_ror(x, 12)
#define X_ROR7(x) x_ror(x, 7)
#define X_SET1(x) _mm_set1_epi32((int)(x))
#define X_LOAD(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
#define X_STORE(p, x) _mm_storeu_si128((__m128i *)(void *)(p), x)
#define X_EVENS(a, b)                                                                          \
  _mm_castps_si128(                                                                            \
      _mm_shuffle_ps(_mm_castsi128_ps(a), _mm_castsi128_ps(b), _MM_SHUFFLE(2, 0, 2, 0)))
#define X_ODDS(a, b)                                                                           \
  _mm_castps_si128(                                                                            \
      _mm_shuffle_ps(_mm_castsi128_ps(a), _mm_castsi128_ps(b), _MM_SHUFFLE(3, 1, 3, 1)))
#define X_END() ((void)0)

TGT_X_INLINE __m128i x_ror(__m128i x, const int n) {
  return _mm_or_si128(_mm_srli_epi32(x, n), _mm_slli_epi32(x, 32 - n));
}

/* Four 4 x 4 transposes: rows are lanes, 16 bytes of each lane's block at a time. */
TGT_X_INLINE void X_load_msg(const uint8_t *const *in, size_t off, __m128i m[16]) {
  for (int q = 0; q < 4; q++) {
    const __m128i r0 = X_LOAD(in[0] + off + 16 * q), r1 = X_LOAD(in[1] + off + 16 * q);
    const __m128i r2 = X_LOAD(in[2] + off + 16 * q), r3 = X_LOAD(in[3] + off + 16 * q);
    const __m128i t0 = _mm_unpacklo_epi32(r0, r1), t1 = _mm_unpackhi_epi32(r0, r1);
    const __m128i t2 = _mm_unpacklo_epi32(r2, r3), t3 = _mm_unpackhi_epi32(r2, r3);
    m[4 * q + 0] = _mm_unpacklo_epi64(t0, t2);
    m[4 * q + 1] = _mm_unpackhi_epi64(t0, t2);
    m[4 * q + 2] = _mm_unpacklo_epi64(t1, t3);
    m[4 * q + 3] = _mm_unpackhi_epi64(t1, t3);
  }
}

TGT_X static void chunks_x(const uint8_t *const *in, uint64_t counter, uint32_t *cvs,
                           size_t stride) {
  CHUNKS_BODY(X, 4, __m128i);
}

TGT_X static void parents_x(const uint32_t *src, uint32_t *dst, size_t stride) {
  PARENTS_BODY(X, 4, __m128i);
}

/* ------------------------------------------------------------------------------------------ */
/* AVX2: 8 lanes                                                                              */
/* ------------------------------------------------------------------------------------------ */

#define TGT_Y __attribute__((target("avx2")))
#define TGT_Y_INLINE __attribute__((target("avx2"), always_inline)) static inline

#define Y_ADD(a, b) _mm256_add_epi32(a, b)
#define Y_XOR(a, b) _mm256_xor_si256(a, b)
#define Y_SHUF16                                                                               \
  _mm256_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4,  \
                   5, 10, 11, 8, 9, 14, 15, 12, 13)
#define Y_SHUF8                                                                                \
  _mm256_setr_epi8(1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12, 1, 2, 3, 0, 5, 6, 7,  \
                   4, 9, 10, 11, 8, 13, 14, 15, 12)
#define Y_ROR16(x) _mm256_shuffle_epi8(x, Y_SHUF16)
#define Y_ROR8(x) _mm256_shuffle_epi8(x, Y_SHUF8)
#define Y_ROR12(x) y_ror(x, 12)
#define Y_ROR7(x) y_ror(x, 7)
#define Y_SET1(x) _mm256_set1_epi32((int)(x))
#define Y_LOAD(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define Y_STORE(p, x) _mm256_storeu_si256((__m256i *)(void *)(p), x)
/* shuffle_ps gives a0 a2 b0 b2 | a4 a6 b4 b6; the 64-bit permute puts the a pairs first. */
#define Y_EVENS(a, b)                                                                          \
  _mm256_permute4x64_epi64(_mm256_castps_si256(_mm256_shuffle_ps(                              \
                               _mm256_castsi256_ps(a), _mm256_castsi256_ps(b),                 \
                               _MM_SHUFFLE(2, 0, 2, 0))),                                      \
                           _MM_SHUFFLE(3, 1, 2, 0))
#define Y_ODDS(a, b)                                                                           \
  _mm256_permute4x64_epi64(_mm256_castps_si256(_mm256_shuffle_ps(                              \
                               _mm256_castsi256_ps(a), _mm256_castsi256_ps(b),                 \
                               _MM_SHUFFLE(3, 1, 3, 1))),                                      \
                           _MM_SHUFFLE(3, 1, 2, 0))
#define Y_END() _mm256_zeroupper()

TGT_Y_INLINE __m256i y_ror(__m256i x, const int n) {
  return _mm256_or_si256(_mm256_srli_epi32(x, n), _mm256_slli_epi32(x, 32 - n));
}

/*
 * Two 8 x 8 transposes (words 0..7, then 8..15): 32-bit and 64-bit unpacks transpose the 4 x 4
 * blocks inside each 128-bit half; then the halves are exchanged.
 */
TGT_Y_INLINE void Y_load_msg(const uint8_t *const *in, size_t off, __m256i m[16]) {
  for (int h = 0; h < 2; h++) {
    __m256i r[8], t[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) r[i] = Y_LOAD(in[i] + off + 32 * h);
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
      t[2 * g] = _mm256_unpacklo_epi32(r[2 * g], r[2 * g + 1]);
      t[2 * g + 1] = _mm256_unpackhi_epi32(r[2 * g], r[2 * g + 1]);
    }
#pragma GCC unroll 2
    for (int q = 0; q < 2; q++) { /* rows 4q .. 4q+3; r[4q + j] = word 4k + j in half k */
      r[4 * q + 0] = _mm256_unpacklo_epi64(t[4 * q], t[4 * q + 2]);
      r[4 * q + 1] = _mm256_unpackhi_epi64(t[4 * q], t[4 * q + 2]);
      r[4 * q + 2] = _mm256_unpacklo_epi64(t[4 * q + 1], t[4 * q + 3]);
      r[4 * q + 3] = _mm256_unpackhi_epi64(t[4 * q + 1], t[4 * q + 3]);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
      m[8 * h + j] = _mm256_permute2x128_si256(r[j], r[4 + j], 0x20);
      m[8 * h + 4 + j] = _mm256_permute2x128_si256(r[j], r[4 + j], 0x31);
    }
  }
}

TGT_Y static void chunks_y(const uint8_t *const *in, uint64_t counter, uint32_t *cvs,
                           size_t stride) {
  CHUNKS_BODY(Y, 8, __m256i);
}

TGT_Y static void parents_y(const uint32_t *src, uint32_t *dst, size_t stride) {
  PARENTS_BODY(Y, 8, __m256i);
}

/* ------------------------------------------------------------------------------------------ */
/* AVX-512 (F): 16 lanes                                                                      */
/* ------------------------------------------------------------------------------------------ */

#define TGT_Z __attribute__((target("avx512f")))
#define TGT_Z_INLINE __attribute__((target("avx512f"), always_inline)) static inline

#define Z_ADD(a, b) _mm512_add_epi32(a, b)
#define Z_XOR(a, b) _mm512_xor_si512(a, b)
#define Z_ROR16(x) _mm512_ror_epi32(x, 16)
#define Z_ROR12(x) _mm512_ror_epi32(x, 12)
#define Z_ROR8(x) _mm512_ror_epi32(x, 8)
#define Z_ROR7(x) _mm512_ror_epi32(x, 7)
#define Z_SET1(x) _mm512_set1_epi32((int)(x))
#define Z_LOAD(p) _mm512_loadu_si512((const void *)(p))
#define Z_STORE(p, x) _mm512_storeu_si512((void *)(p), x)
#define Z_EVENS(a, b)                                                                          \
  _mm512_permutex2var_epi32(a,                                                                 \
                            _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24,   \
                                              26, 28, 30),                                     \
                            b)
#define Z_ODDS(a, b)                                                                           \
  _mm512_permutex2var_epi32(a,                                                                 \
                            _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25,   \
                                              27, 29, 31),                                     \
                            b)
#define Z_END() _mm256_zeroupper()

/*
 * A 16 x 16 transpose: 32-bit and 64-bit unpacks transpose the 4 x 4 blocks inside each
 * 128-bit quarter (after them, vector 4q + j holds, in quarter k, rows 4q .. 4q+3 of word
 * 4k + j); two rounds of 128-bit shuffles then transpose the 4 x 4 grid of quarters.
 */
TGT_Z_INLINE void Z_load_msg(const uint8_t *const *in, size_t off, __m512i m[16]) {
  __m512i r[16], t[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; i++) r[i] = Z_LOAD(in[i] + off);
#pragma GCC unroll 8
  for (int g = 0; g < 8; g++) {
    t[2 * g] = _mm512_unpacklo_epi32(r[2 * g], r[2 * g + 1]);
    t[2 * g + 1] = _mm512_unpackhi_epi32(r[2 * g], r[2 * g + 1]);
  }
#pragma GCC unroll 4
  for (int q = 0; q < 4; q++) {
    r[4 * q + 0] = _mm512_unpacklo_epi64(t[4 * q], t[4 * q + 2]);
    r[4 * q + 1] = _mm512_unpackhi_epi64(t[4 * q], t[4 * q + 2]);
    r[4 * q + 2] = _mm512_unpacklo_epi64(t[4 * q + 1], t[4 * q + 3]);
    r[4 * q + 3] = _mm512_unpackhi_epi64(t[4 * q + 1], t[4 * q + 3]);
  }
#pragma GCC unroll 4
  for (int j = 0; j < 4; j++) {
    /* s0 = quarters 0,1 of rows 0-3 and 4-7; s1 = quarters 2,3 of the same; s2, s3 likewise
     * for rows 8-11 and 12-15. */
    const __m512i s0 = _mm512_shuffle_i32x4(r[j], r[4 + j], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512i s1 = _mm512_shuffle_i32x4(r[j], r[4 + j], _MM_SHUFFLE(3, 2, 3, 2));
    const __m512i s2 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512i s3 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], _MM_SHUFFLE(3, 2, 3, 2));
    m[j] = _mm512_shuffle_i32x4(s0, s2, _MM_SHUFFLE(2, 0, 2, 0));
    m[4 + j] = _mm512_shuffle_i32x4(s0, s2, _MM_SHUFFLE(3, 1, 3, 1));
    m[8 + j] = _mm512_shuffle_i32x4(s1, s3, _MM_SHUFFLE(2, 0, 2, 0));
    m[12 + j] = _mm512_shuffle_i32x4(s1, s3, _MM_SHUFFLE(3, 1, 3, 1));
  }
}

TGT_Z static void chunks_z(const uint8_t *const *in, uint64_t counter, uint32_t *cvs,
                           size_t stride) {
  CHUNKS_BODY(Z, 16, __m512i);
}

TGT_Z static void parents_z(const uint32_t *src, uint32_t *dst, size_t stride) {
  PARENTS_BODY(Z, 16, __m512i);
}

#endif /* B3_X86 */

/* ------------------------------------------------------------------------------------------ */
/* Tree                                                                                       */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  unsigned width; /* lanes */
  chunks_fn chunks;
  parents_fn parents;
} b3_kernel;

typedef struct {
  const char *name;
  int (*supported)(void);
  b3_kernel k[4]; /* widest first, ending with the scalar one (width 1) */
} b3_impl;

/* The kernel for the next r items of a level: the widest when r fills it, else the narrowest
 * that takes all r in one call. */
static const b3_kernel *pick(const b3_impl *impl, size_t r) {
  const b3_kernel *best = &impl->k[0];
  for (const b3_kernel *k = impl->k; k->width >= r; k++) {
    best = k;
    if (k->width == 1) break;
  }
  return best;
}

/*
 * The chaining value of the chunks of p[0..len) (at most GROUP_CHUNKS of them, counters from
 * `counter`), reduced level-wise; with `root`, the hash instead (then len > CHUNK_LEN).
 */
static void group_cv(const b3_impl *impl, const uint8_t *p, size_t len, uint64_t counter,
                     int root, uint32_t out[8]) {
  uint32_t cvs[8 * CAP] __attribute__((aligned(64)));
  const size_t nfull = len / CHUNK_LEN, tail = len % CHUNK_LEN;
  size_t count = nfull + (tail != 0);
  /* Spare lanes read past the level's end: give them defined (if meaningless) words. */
  for (int w = 0; w < 8; w++) memset(cvs + w * CAP + count, 0, PAD * sizeof(uint32_t));

  const uint8_t *in[MAX_LANES];
  for (size_t c = 0; c < nfull;) {
    const b3_kernel *k = pick(impl, nfull - c);
    const size_t n = nfull - c < k->width ? nfull - c : k->width;
    for (unsigned i = 0; i < k->width; i++) in[i] = p + (c + (i < n ? i : 0)) * CHUNK_LEN;
    k->chunks(in, counter + c, cvs + c, CAP);
    c += n;
  }
  if (tail != 0) { /* after the whole chunks, whose spare lanes may write here */
    uint32_t cv[8];
    chunk_cv(p + nfull * CHUNK_LEN, tail, counter + nfull, 0, cv);
    for (int w = 0; w < 8; w++) cvs[w * CAP + nfull] = cv[w];
  }

  const size_t stop = root ? 2 : 1;
  while (count > stop) {
    const size_t np = count / 2;
    const int carry = count & 1;
    uint32_t odd[8];
    if (carry)
      for (int w = 0; w < 8; w++) odd[w] = cvs[w * CAP + count - 1];
    for (size_t q = 0; q < np;) {
      const b3_kernel *k = pick(impl, np - q);
      k->parents(cvs + 2 * q, cvs + q, CAP);
      q += np - q < k->width ? np - q : k->width;
    }
    if (carry)
      for (int w = 0; w < 8; w++) cvs[w * CAP + np] = odd[w];
    count = np + carry;
  }

  if (root) {
    uint32_t left[8], right[8];
    for (int w = 0; w < 8; w++) left[w] = cvs[w * CAP], right[w] = cvs[w * CAP + 1];
    parent_cv(left, right, ROOT, out);
  } else {
    for (int w = 0; w < 8; w++) out[w] = cvs[w * CAP];
  }
}

static void blake3(const b3_impl *impl, const uint8_t *buf, size_t len, uint8_t out[32]) {
  uint32_t h[8];
  const size_t group_len = (size_t)GROUP_CHUNKS * CHUNK_LEN;
  if (len <= CHUNK_LEN) {
    chunk_cv(buf, len, 0, ROOT, h);
  } else if (len <= group_len) {
    group_cv(impl, buf, len, 0, 1, h);
  } else {
    uint32_t stack[64][8]; /* one subtree per bit of the group count */
    unsigned n = 0;
    for (uint64_t g = 0;; g++) {
      const size_t off = (size_t)g * group_len, rest = len - off;
      if (rest > group_len) {
        group_cv(impl, buf + off, group_len, g * GROUP_CHUNKS, 0, h);
        for (uint64_t t = g + 1; (t & 1) == 0; t >>= 1) parent_cv(stack[--n], h, 0, h);
        memcpy(stack[n++], h, sizeof h);
      } else {
        group_cv(impl, buf + off, rest, g * GROUP_CHUNKS, 0, h);
        while (n > 1) parent_cv(stack[--n], h, 0, h);
        parent_cv(stack[0], h, ROOT, h);
        break;
      }
    }
  }
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (uint8_t)h[i];
    out[4 * i + 1] = (uint8_t)(h[i] >> 8);
    out[4 * i + 2] = (uint8_t)(h[i] >> 16);
    out[4 * i + 3] = (uint8_t)(h[i] >> 24);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Dispatch and exports                                                                       */
/* ------------------------------------------------------------------------------------------ */

static int always(void) { return 1; }
#ifdef B3_X86
static int has_sse41(void) {
  return __builtin_cpu_supports("ssse3") && __builtin_cpu_supports("sse4.1");
}
static int has_avx2(void) { return __builtin_cpu_supports("avx2") && has_sse41(); }
static int has_avx512(void) { return __builtin_cpu_supports("avx512f") && has_avx2(); }
#endif

#define K_SCALAR {1, chunks_1, parents_1}

/* Best first. */
static const b3_impl impls[] = {
#ifdef B3_X86
    {"avx512", has_avx512, {{16, chunks_z, parents_z}, {8, chunks_y, parents_y},
                            {4, chunks_x, parents_x}, K_SCALAR}},
    {"avx2", has_avx2, {{8, chunks_y, parents_y}, {4, chunks_x, parents_x}, K_SCALAR}},
    {"sse41", has_sse41, {{4, chunks_x, parents_x}, K_SCALAR}},
#endif
    {"scalar", always, {K_SCALAR}},
};
#define NIMPLS (sizeof impls / sizeof impls[0])

static const b3_impl *current;

static const b3_impl *best_impl(void) {
#ifdef B3_X86
  __builtin_cpu_init();
#endif
  for (unsigned i = 0; i < NIMPLS; i++)
    if (impls[i].supported()) return &impls[i];
  return &impls[NIMPLS - 1];
}

__attribute__((constructor)) static void b3_init(void) { current = best_impl(); }

/*
 * The BLAKE3 hash (32 bytes) of buf[0..len). `len` is 32-bit for the same reason as
 * zs_fletcher4_native's (a u64 argument costs a BigInt per call); BLAKE3 cannot be resumed
 * from a split, so io/native/blake3_native.ts hashes larger inputs in TypeScript.
 */
ZS_EXPORT void zs_blake3(const uint8_t *buf, uint32_t len, uint8_t *out32) {
  if (!current) b3_init();
  blake3(current, buf, len, out32);
}

/** The name of the implementation in use: "avx512", "avx2", "sse41" or "scalar". */
ZS_EXPORT const char *zs_blake3_impl(void) {
  if (!current) b3_init();
  return current->name;
}

/**
 * Switches implementation (for tests and benchmarks; not thread-safe): "auto" picks the best
 * the CPU supports. Returns 0, or -1 if the name is unknown or the CPU lacks the feature.
 */
ZS_EXPORT int zs_blake3_select(const char *name) {
  if (!current) b3_init();
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
