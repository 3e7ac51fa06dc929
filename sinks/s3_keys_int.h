/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_S3_KEYS_INT_H
#define SL_S3_KEYS_INT_H

#include "s3_keys.h"

/* Shared by s3_keys.c and s3_keys_time.c only. Any thread. */

/* Appends !{firehose:random-string}'s value (SL_S3_RANDOM_LEN characters). */
SL_NODISCARD int sl_s3_keys_time_random(struct sl_buf *out, sl_rand_fn rand, void *rand_arg);

#endif
