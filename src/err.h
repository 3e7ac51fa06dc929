/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_ERR_H
#define SL_ERR_H

#include <stdbool.h>

/* The project's error codes. Fallible functions return 0 or one of these (negative). Adapters
 * translate their library's errors (CURLcode, HTTP status, librdkafka, hiredis) into these at
 * their own boundary. */
enum sl_err {
    SL_OK = 0,
    SL_ENOMEM = -1,
    SL_EINVAL = -2,
    SL_EAGAIN = -3,
    SL_ETIMEDOUT = -4,
    SL_EIO = -5,
    SL_ETHROTTLED = -6,
    SL_EAUTH = -7,
    SL_EPROTO = -8,
    SL_ENOTFOUND = -9,
    SL_EREMOTE = -10,   /* 5xx or a service-side failure */
    SL_EREJECTED = -11, /* 4xx or a function error */
    SL_ECANCELED = -12,
    SL_ECONFIG = -13,
    SL_EINPROGRESS = -14, /* an async operation started; its callback reports the result */
    SL_ERR_COUNT = 15
};

#if defined(__GNUC__)
#define SL_NODISCARD         __attribute__((warn_unused_result))
#define SL_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define SL_NODISCARD
#define SL_PRINTF(fmt, args)
#endif

#define SL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Returns a static, human-readable name for err (any value; unknown codes get "unknown error"). */
const char *sl_strerror(int err);

/* Returns true when an operation that failed with err may succeed if tried again later. */
bool sl_err_retriable(int err);

#endif
