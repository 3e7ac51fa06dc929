/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_FIREHOSE_DESCRIBE_H
#define SL_FIREHOSE_DESCRIBE_H

#include <cjson/cJSON.h>

#include "err.h"
#include "firehose_api.h"

/* DescribeDeliveryStream of the call req (a JSON object): fills *ret with the answer (or AWS's
 * error) and returns 0, or SL_ENOMEM. Loop thread. */
SL_NODISCARD int sl_firehose_describe(struct sl_firehose_host *host,
                                      const cJSON *req,
                                      struct sl_firehose_reply *ret);

/* ListDeliveryStreams of the call req (a JSON object): as sl_firehose_describe. */
SL_NODISCARD int sl_firehose_describe_list(struct sl_firehose_host *host,
                                           const cJSON *req,
                                           struct sl_firehose_reply *ret);

#endif
