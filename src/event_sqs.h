/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_EVENT_SQS_H
#define SL_EVENT_SQS_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "err.h"
#include "event.h"
#include "json_scan.h"

/* The SQS event (esm.md §2): {"Records":[rec,rec,...]}, each record exactly AWS's fields, in
 * AWS's order: messageId, receiptHandle, body, attributes, messageAttributes (keys'
 * first letters lowered: stringValue, binaryValue, stringListValues, binaryListValues,
 * dataType), md5OfMessageAttributes (null without attributes), md5OfBody, eventSource
 * "aws:sqs", eventSourceARN, awsRegion. The filter document is the record with its body parsed
 * as JSON when it is JSON. Nothing here keeps state; any thread.
 *
 * A record is written in three pieces, so an adapter can keep the body as the record's bytes
 * and the rest, prepared once per received message, as its meta: head (up to and with
 * "body":), the body as a JSON string, and tail (from ,"attributes" to the closing brace). */
extern const struct sl_event_format sl_event_sqs;

/* Prepares head and tail (appended to each) from one message of a ReceiveMessage answer
 * (AWS JSON 1.0: MessageId, ReceiptHandle, MD5OfBody, Attributes, MessageAttributes,
 * MD5OfMessageAttributes): token message of s (json_scan.h), the queue's ARN and region.
 * Returns 0, SL_EPROTO (no MessageId or ReceiptHandle) or SL_ENOMEM. */
SL_NODISCARD int sl_event_sqs_prepare(const struct sl_json_scan *s,
                                      size_t message,
                                      const char *arn,
                                      const char *region,
                                      struct sl_buf *head,
                                      struct sl_buf *tail);

/* Appends the record head + body (as a JSON string) + tail to out. Returns 0 or SL_ENOMEM. */
SL_NODISCARD int sl_event_sqs_encode(struct sl_buf *out,
                                     const char *head,
                                     size_t head_len,
                                     const char *body,
                                     size_t body_len,
                                     const char *tail,
                                     size_t tail_len);

/* The filter document of that record: the record itself, its body parsed as JSON when it is
 * JSON (else the body string). Owned by the caller; NULL on OOM. */
cJSON *sl_event_sqs_filter_doc(const char *head,
                               size_t head_len,
                               const char *body,
                               size_t body_len,
                               const char *tail,
                               size_t tail_len);

#endif
