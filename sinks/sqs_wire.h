/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_SQS_WIRE_H
#define SL_SQS_WIRE_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "buf.h"
#include "httpc.h"
#include "json_scan.h"
#include "sink.h"

#define SQS_GROUP_ID   "sluice" /* FIFO: one message group, so failure records stay in order */
#define SQS_BATCH_MAX  10u      /* entries of one SendMessageBatch */
#define SQS_DETAIL_MAX 512

/* The request body of SendMessage to queue_url (replacing b's contents): body as
 * MessageBody; for a FIFO queue MessageGroupId SQS_GROUP_ID and MessageDeduplicationId key
 * when it is a valid id, else a hash of body. Returns 0 or SL_ENOMEM. Pure. */
int sl_sqs_wire_send(struct sl_buf *b,
                     const char *queue_url,
                     bool fifo,
                     const char *body,
                     size_t len,
                     const char *key);

/* The request body of SendMessageBatch to queue_url (replacing b's contents): docs[i] as the
 * entry with Id "i" (0 < n <= SQS_BATCH_MAX), each message as sl_sqs_wire_send makes it.
 * Returns 0 or SL_ENOMEM. Pure. */
int sl_sqs_wire_batch(
    struct sl_buf *b, const char *queue_url, bool fifo, const struct sl_sink_doc *docs, size_t n);

/* One entry of a batch request (SendMessageBatch, DeleteMessageBatch,
 * ChangeMessageVisibilityBatch) as its 200 answer says: named under Successful (ok), under
 * Failed (sender_fault, code and message, borrowed from the parsed answer), or not at all. */
struct sl_sqs_wire_entry {
    bool named;
    bool ok;
    bool sender_fault;
    const char *code;    /* "" when none */
    const char *message; /* NULL when none */
};

/* What a batch answer was read into, which the entries' codes and messages point into. */
struct sl_sqs_wire_answer {
    struct sl_json_scan scan;
    struct sl_buf strs; /* the Failed entries' codes and messages, decoded */
};

/* Frees what a was read into (the entries' codes and messages with it). */
void sl_sqs_wire_answer_fini(struct sl_sqs_wire_answer *a);

/* Reads a batch answer (body, len) whose entries were sent with Ids "0".."n-1" into
 * ret[0..n) (n <= SQS_BATCH_MAX), the codes and messages pointing into *a (set by the call:
 * sl_sqs_wire_answer_fini it after). Every entry is left not named when the answer is not JSON
 * (or memory ran out reading it). The answer is indexed in place (json_scan.h), not built into
 * a cJSON tree: it comes back for every delete of the SQS source. */
void sl_sqs_wire_entries(const char *body,
                         size_t len,
                         size_t n,
                         struct sl_sqs_wire_entry *ret,
                         struct sl_sqs_wire_answer *a);

/* Reads a 2xx answer of SendMessageBatch (body, len) of n entries into results[0..n), each
 * failure's detail written to details[i] (the result points to it) naming queue `where`:
 * Successful → DELIVERED; Failed with SenderFault → REJECTED (SL_EREJECTED), else RETRY
 * (throttling: SL_ETHROTTLED, else SL_EREMOTE); an entry the answer does not name → RETRY
 * (SL_EPROTO). Pure. */
void sl_sqs_wire_batch_read(const char *body,
                            size_t len,
                            const char *where,
                            size_t n,
                            struct sl_sink_result *results,
                            char (*details)[SQS_DETAIL_MAX]);

/* The request body of GetQueueUrl (replacing b's contents). Returns 0 or SL_ENOMEM. Pure. */
int sl_sqs_wire_geturl(struct sl_buf *b, const char *name, const char *account);

/* The headers of a request of action (AmazonSQS.<action> over AWS JSON 1.0), with the
 * session token when signed requests carry one (NULL: none). Returns 0 and *ret (owned: free
 * with curl_slist_free_all), or SL_ENOMEM. */
int sl_sqs_wire_headers(const char *action, const char *session_token, struct curl_slist **ret);

/* Translates a finished request of action (SendMessage, GetQueueUrl) about queue `where`, sent
 * via endpoint `via` (both as logs may show them), into a negative SL_E* and a detail. Returns
 * 0 for 2xx. */
int sl_sqs_wire_outcome(const char *action,
                        const char *where,
                        const char *via,
                        const struct sl_http_resp *resp,
                        char *detail,
                        size_t len);

#endif
