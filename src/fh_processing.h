/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_FH_PROCESSING_H
#define SL_FH_PROCESSING_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "err.h"
#include "errlist.h"
#include "fh_partition.h"
#include "fh_transform.h"

/* A destination's ProcessingConfiguration, in Firehose's shape:
 *   {"Enabled": true, "Processors": [{"Type": "Lambda", "Parameters": [
 *       {"ParameterName": "LambdaArn", "ParameterValue": "..."}, ...]}, ...]}
 * Processor types read: Lambda (LambdaArn, NumberOfRetries, BufferSizeInMBs,
 * BufferIntervalInSeconds, RoleArn: fh_transform.h), MetadataExtraction
 * (MetadataExtractionQuery, JsonParsingEngine JQ-1.6: fh_partition.h) and
 * AppendDelimiterToRecord (Delimiter: the bytes written after each record, with the escapes
 * \n \t \r \\ decoded; default "\n", as Firehose). RecordDeAggregation, Decompression and
 * CloudWatchLogProcessing are refused by name (not built), never ignored. Each type at most
 * once, each parameter at most once; values are strings (ParameterValue: 1 to 5120 characters,
 * not blank), numbers inside them range-checked. With "Enabled": false the processors are
 * still checked, and none runs; Processors without Enabled are refused (AWS does not write
 * down its default).
 *
 * The caller (the stream's config) then resolves lambda.lambda_arn as a FunctionName, and
 * checks the S3 layout with sl_fh_partition_check(..., query, lambda.enabled, ...). Main thread,
 * at config time; nothing logs. */
struct sl_fh_processing {
    bool enabled;                       /* Enabled */
    struct sl_fh_transform_conf lambda; /* lambda.enabled: a Lambda processor runs */
    struct sl_fh_query *query;          /* the MetadataExtraction processor's, or NULL */
    bool append_delimiter;              /* AppendDelimiterToRecord: delimiter after each record */
    char *delimiter;                    /* its Delimiter, escapes decoded (default "\n"); owned */
    size_t delimiter_len;
};

/* Reads pc (NULL: nothing enabled) at path (the key's own path, e.g.
 * "$.delivery_streams[0].ExtendedS3DestinationConfiguration.ProcessingConfiguration").
 * Returns 0 with *ret filled (owned: sl_fh_processing_fini), SL_ECONFIG with one line per
 * problem in errs ("FILE: PATH.Processors[0].Parameters[1].ParameterValue: problem; allowed:
 * ...") and *ret empty, or SL_ENOMEM. */
SL_NODISCARD int sl_fh_processing_parse(const cJSON *pc,
                                        const char *file,
                                        const char *path,
                                        struct sl_fh_processing *ret,
                                        struct sl_errlist *errs);
void sl_fh_processing_fini(struct sl_fh_processing *p);

#endif
