/* SPDX-License-Identifier: Apache-2.0 */
/* sha256.c: SHA-256 as FIPS 180-4 defines it and HMAC-SHA256 as RFC 2104 does, for request
 * signing (sigv4.c). It is here because the dependency list is fixed and Debian's libcurl does
 * not export its own hashing; OpenSSL is only linked by curl, not by us. Straight portable C:
 * byte order handled by shifts, no table beyond the round constants, no allocation.
 *
 * On x86-64 processors with the SHA extensions the compression function runs on them instead
 * (chosen once, at the first block, from CPUID): every signed request hashes its body, its
 * canonical request and its string to sign, about 18 blocks for an SQS call, and the portable
 * rounds (some 4,000 instructions a block) were a sixth of the SQS source's instructions. The
 * portable code stays the reference and the fallback; tests run both. Contexts that held key
 * material are wiped when done. Any thread. */
#include "sha256.h"

#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define SHA256_X86 1
#endif

#include "secret.h"

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t rotr(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

/* Runs the compression function over one 64-byte block. */
static void sha256_block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++) {
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    }
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = hh + S1 + ch + sha256_k[i] + w[i];
        uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = S0 + maj;
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
    sl_secret_wipe(w, sizeof(w));
}

#ifdef SHA256_X86
/* The compression function on the SHA extensions, over n blocks: the state kept as the
 * instructions want it (ABEF and CDGH), four rounds per step, the message schedule four words at
 * a time (sha256msg1 adds sigma0 of the next words, sha256msg2 sigma1 of the last two). */
__attribute__((target("sha,sse4.1,ssse3"))) static void
sha256_blocks_x86(uint32_t h[8], const uint8_t *p, size_t n)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i t = _mm_loadu_si128((const __m128i *)(const void *)&h[0]);
    __m128i s1 = _mm_loadu_si128((const __m128i *)(const void *)&h[4]);
    t = _mm_shuffle_epi32(t, 0xB1);         /* CDAB */
    s1 = _mm_shuffle_epi32(s1, 0x1B);       /* EFGH */
    __m128i s0 = _mm_alignr_epi8(t, s1, 8); /* ABEF */
    s1 = _mm_blend_epi16(s1, t, 0xF0);      /* CDGH */
    for (; n; n--, p += SL_SHA256_BLOCK) {
        __m128i abef = s0, cdgh = s1, w[4];
        for (int i = 0; i < 16; i++) {
            __m128i m;
            if (i < 4) {
                m = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i)),
                                     bswap);
            } else {
                m = _mm_sha256msg1_epu32(w[(i - 4) & 3], w[(i - 3) & 3]);
                m = _mm_add_epi32(m, _mm_alignr_epi8(w[(i - 1) & 3], w[(i - 2) & 3], 4));
                m = _mm_sha256msg2_epu32(m, w[(i - 1) & 3]);
            }
            w[i & 3] = m;
            __m128i k =
                _mm_add_epi32(m, _mm_loadu_si128((const __m128i *)(const void *)&sha256_k[4 * i]));
            s1 = _mm_sha256rnds2_epu32(s1, s0, k);
            s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(k, 0x0E));
        }
        s0 = _mm_add_epi32(s0, abef);
        s1 = _mm_add_epi32(s1, cdgh);
    }
    t = _mm_shuffle_epi32(s0, 0x1B);   /* FEBA */
    s1 = _mm_shuffle_epi32(s1, 0xB1);  /* DCHG */
    s0 = _mm_blend_epi16(t, s1, 0xF0); /* DCBA */
    s1 = _mm_alignr_epi8(s1, t, 8);    /* HGFE */
    _mm_storeu_si128((__m128i *)(void *)&h[0], s0);
    _mm_storeu_si128((__m128i *)(void *)&h[4], s1);
}

/* Whether the processor has the SHA extensions (and SSSE3 and SSE4.1, which the code above also
 * uses). */
static bool sha256_cpu_has_sha(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSSE3) || !(c & bit_SSE4_1)) {
        return false;
    }
    if (__get_cpuid_max(0, NULL) < 7) {
        return false;
    }
    __cpuid_count(7, 0, a, b, c, d);
    return (b & bit_SHA) != 0;
}
#endif

/* -1: not yet decided; 0: portable; 1: the SHA extensions. */
static atomic_int sha256_accel = -1;

static bool sha256_use_accel(void)
{
    int a = atomic_load_explicit(&sha256_accel, memory_order_relaxed);
    if (a < 0) {
#ifdef SHA256_X86
        a = sha256_cpu_has_sha();
#else
        a = 0;
#endif
        atomic_store_explicit(&sha256_accel, a, memory_order_relaxed);
    }
    return a > 0;
}

bool sl_sha256_set_accel(bool on)
{
#ifdef SHA256_X86
    if (on && !sha256_cpu_has_sha()) {
        on = false;
    }
#else
    on = false;
#endif
    atomic_store_explicit(&sha256_accel, on ? 1 : 0, memory_order_relaxed);
    return on;
}

/* Runs the compression function over n consecutive blocks. */
static void sha256_blocks(uint32_t h[8], const uint8_t *p, size_t n)
{
#ifdef SHA256_X86
    if (sha256_use_accel()) {
        sha256_blocks_x86(h, p, n);
        return;
    }
#endif
    for (; n; n--, p += SL_SHA256_BLOCK) {
        sha256_block(h, p);
    }
}

void sl_sha256_init(struct sl_sha256 *c)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, iv, sizeof(iv));
    c->total = 0;
    c->fill = 0;
}

void sl_sha256_update(struct sl_sha256 *c, const void *p, size_t n)
{
    const uint8_t *in = p;
    if (n == 0) {
        return;
    }
    c->total += n;
    if (c->fill) {
        size_t take = SL_SHA256_BLOCK - c->fill;
        if (take > n) {
            take = n;
        }
        memcpy(c->block + c->fill, in, take);
        c->fill += take;
        in += take;
        n -= take;
        if (c->fill < SL_SHA256_BLOCK) {
            return;
        }
        sha256_blocks(c->h, c->block, 1);
        c->fill = 0;
    }
    if (n >= SL_SHA256_BLOCK) {
        size_t blocks = n / SL_SHA256_BLOCK;
        sha256_blocks(c->h, in, blocks);
        in += blocks * SL_SHA256_BLOCK;
        n -= blocks * SL_SHA256_BLOCK;
    }
    if (n) {
        memcpy(c->block, in, n);
        c->fill = n;
    }
}

void sl_sha256_final(struct sl_sha256 *c, uint8_t out[SL_SHA256_LEN])
{
    uint64_t bits = c->total * 8;
    /* Padding: 0x80, zeros up to 56 mod 64, then the length in bits, big-endian. */
    c->block[c->fill++] = 0x80;
    if (c->fill > 56) {
        memset(c->block + c->fill, 0, SL_SHA256_BLOCK - c->fill);
        sha256_blocks(c->h, c->block, 1);
        c->fill = 0;
    }
    memset(c->block + c->fill, 0, 56 - c->fill);
    for (int i = 0; i < 8; i++) {
        c->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    }
    sha256_blocks(c->h, c->block, 1);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
    sl_secret_wipe(c, sizeof(*c));
}

void sl_sha256(const void *p, size_t n, uint8_t out[SL_SHA256_LEN])
{
    struct sl_sha256 c;
    sl_sha256_init(&c);
    sl_sha256_update(&c, p, n);
    sl_sha256_final(&c, out);
}

void sl_sha256_hex(const uint8_t *d, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * n] = '\0';
}

void sl_hmac_sha256(
    const void *key, size_t key_len, const void *msg, size_t msg_len, uint8_t out[SL_SHA256_LEN])
{
    uint8_t k[SL_SHA256_BLOCK];
    memset(k, 0, sizeof(k));
    if (key_len > SL_SHA256_BLOCK) {
        sl_sha256(key, key_len, k); /* a long key is replaced by its digest */
    } else if (key_len) {
        memcpy(k, key, key_len);
    }
    uint8_t pad[SL_SHA256_BLOCK];
    uint8_t inner[SL_SHA256_LEN];
    struct sl_sha256 c;
    for (size_t i = 0; i < SL_SHA256_BLOCK; i++) {
        pad[i] = k[i] ^ 0x36;
    }
    sl_sha256_init(&c);
    sl_sha256_update(&c, pad, sizeof(pad));
    sl_sha256_update(&c, msg, msg_len);
    sl_sha256_final(&c, inner);
    for (size_t i = 0; i < SL_SHA256_BLOCK; i++) {
        pad[i] = k[i] ^ 0x5c;
    }
    sl_sha256_init(&c);
    sl_sha256_update(&c, pad, sizeof(pad));
    sl_sha256_update(&c, inner, sizeof(inner));
    sl_sha256_final(&c, out);
    sl_secret_wipe(k, sizeof(k));
    sl_secret_wipe(pad, sizeof(pad));
    sl_secret_wipe(inner, sizeof(inner));
}
