/* SPDX-License-Identifier: Apache-2.0 */
/* err.c: names of the project's error codes and which of them are worth retrying. Pure; any
 * thread. */
#include "err.h"

static const char *const err_names[SL_ERR_COUNT] = {
    [0] = "success",
    [-SL_ENOMEM] = "out of memory",
    [-SL_EINVAL] = "invalid argument",
    [-SL_EAGAIN] = "try again",
    [-SL_ETIMEDOUT] = "timed out",
    [-SL_EIO] = "I/O error",
    [-SL_ETHROTTLED] = "throttled",
    [-SL_EAUTH] = "authentication failed",
    [-SL_EPROTO] = "protocol error",
    [-SL_ENOTFOUND] = "not found",
    [-SL_EREMOTE] = "remote service error",
    [-SL_EREJECTED] = "rejected",
    [-SL_ECANCELED] = "canceled",
    [-SL_ECONFIG] = "configuration error",
    [-SL_EINPROGRESS] = "in progress",
};

const char *sl_strerror(int err)
{
    if (err > 0 || err <= -SL_ERR_COUNT) {
        return "unknown error";
    }
    return err_names[-err];
}

bool sl_err_retriable(int err)
{
    switch (err) {
    case SL_EAGAIN:
    case SL_ETIMEDOUT:
    case SL_EIO:
    case SL_ETHROTTLED:
    case SL_EREMOTE:
    case SL_ENOMEM:
        return true;
    default:
        return false;
    }
}
