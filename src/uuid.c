/* SPDX-License-Identifier: Apache-2.0 */
/* uuid.c: random bytes and random (version 4) UUIDs, for the ids and names that Firehose's
 * formats carry: invocationIds, HTTP endpoint requestIds, S3 object names and random strings.
 * One place, so every caller takes the same injectable source of randomness and the same
 * fallback where the kernel has no getrandom. */
#include "uuid.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

void sl_rand_system(void *arg, unsigned char *buf, size_t n)
{
    (void)arg;
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r > 0) {
            got += (size_t)r;
        } else if (r < 0 && errno != EINTR) {
            break;
        }
    }
    if (got < n) {
        /* No getrandom: a clock-seeded xorshift per thread, unique enough for ids and names. */
        struct timespec ts;
        (void)clock_gettime(CLOCK_REALTIME, &ts);
        static _Thread_local uint64_t counter;
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (++counter << 52);
        for (size_t i = got; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = (unsigned char)x;
        }
    }
}

void sl_uuid_v4(char out[SL_UUID_LEN + 1], sl_rand_fn rand, void *rand_arg)
{
    unsigned char b[16];
    (rand ? rand : sl_rand_system)(rand_arg, b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < sizeof b; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[o++] = '-';
        }
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0f];
    }
    out[o] = '\0';
}

int sl_uuid_v4_append(struct sl_buf *out, sl_rand_fn rand, void *rand_arg)
{
    char id[SL_UUID_LEN + 1];
    sl_uuid_v4(id, rand, rand_arg);
    return sl_buf_append(out, id, SL_UUID_LEN);
}
