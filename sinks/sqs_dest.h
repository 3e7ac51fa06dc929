/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_SQS_DEST_H
#define SL_SQS_DEST_H

#include <stdbool.h>
#include <stddef.h>

#define SQS_NAME_MAX    80
#define SQS_ACCOUNT_LEN 12

/* An SQS destination taken apart; no allocation, so handles() can use it. */
struct sqs_dest {
    bool is_arn;
    bool fifo;
    char partition[32]; /* ARN only */
    char region[64];    /* ARN, or an AWS URL's host; else "" */
    char account[SQS_ACCOUNT_LEN + 1];
    char name[SQS_NAME_MAX + 1];
    size_t origin_len; /* URL only: length of "scheme://authority" */
};

/* Parses d, a queue ARN (arn:PARTITION:sqs:REGION:ACCOUNT:NAME) or URL (http(s)://AUTHORITY/
 * ACCOUNT/NAME, 12-digit account), into ret. Returns false when d is neither. Pure. */
bool sl_sqs_dest_parse(const char *d, struct sqs_dest *ret);

/* True for any ARN of the sqs service (so check can say what is wrong with it) and any valid
 * queue URL. Pure. */
bool sl_sqs_dest_handles(const char *destination);

/* Checks destination's shape, and for a URL that curl can reach its host; errbuf says what is
 * allowed. Returns 0 or SL_ECONFIG. Pure. */
int sl_sqs_dest_check(const char *destination, char *errbuf, size_t errlen);

#endif
