/* SPDX-License-Identifier: Apache-2.0 */
/* failrec.c: builds the invocation record that on-failure destinations receive, in AWS's shape
 * (requestContext, responseContext, version, timestamp, the source's batch info, and the
 * payload as AWS's S3 destination keeps it). Key order follows AWS's documented examples. Pure;
 * any thread. */
#include "failrec.h"

#include <stdio.h>

#include "encoder.h"
#include "source.h"

static int failrec_uuid(struct sl_buf *out, const uint64_t bits[2])
{
    uint64_t hi = (bits[0] & ~(UINT64_C(0xf) << 12)) | (UINT64_C(0x4) << 12);
    uint64_t lo = (bits[1] & ~(UINT64_C(0x3) << 62)) | (UINT64_C(0x2) << 62);
    return sl_buf_printf(out, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(hi >> 32),
                         (unsigned)((hi >> 16) & 0xffff), (unsigned)(hi & 0xffff),
                         (unsigned)(lo >> 48), (unsigned long long)(lo & UINT64_C(0xffffffffffff)));
}

int sl_failrec_build(struct sl_buf *out,
                     const struct sl_failrec *f,
                     const struct sl_source_ops *ops,
                     void *src_ctx,
                     const struct sl_batch_run *runs,
                     size_t n_runs,
                     const char *payload,
                     size_t payload_len)
{
    int r = sl_buf_puts(out, "{\"requestContext\":{\"requestId\":\"");
    r = r < 0 ? r : failrec_uuid(out, f->request_id);
    r = r < 0 ? r : sl_buf_puts(out, "\",\"functionArn\":");
    r = r < 0 ? r : sl_enc_json_str(out, f->function_arn, strlen(f->function_arn));
    r = r < 0 ? r : sl_buf_puts(out, ",\"condition\":");
    r = r < 0 ? r : sl_enc_json_str(out, f->condition, strlen(f->condition));
    r = r < 0 ? r : sl_buf_printf(out, ",\"approximateInvokeCount\":%u}", f->invoke_count);
    if (r == 0 && f->response == SL_FAILREC_RESPONSE_NULL) {
        r = sl_buf_puts(out, ",\"responseContext\":null");
    } else if (r == 0 && f->response == SL_FAILREC_RESPONSE_OBJECT) {
        r = sl_buf_printf(out,
                          ",\"responseContext\":{\"statusCode\":%d,\"executedVersion\":"
                          "\"$LATEST\",\"functionError\":%s}",
                          f->status, f->function_error ? "\"Unhandled\"" : "null");
    }
    r = r < 0 ? r : sl_buf_puts(out, ",\"version\":\"1.0\",\"timestamp\":\"");
    r = r < 0 ? r : sl_enc_iso8601_ms(out, f->now_ms);
    r = r < 0 ? r : sl_buf_puts(out, "\",");
    size_t n = 0;
    for (size_t i = 0; i < n_runs; i++) {
        n += runs[i].n;
    }
    if (r == 0 && f->per_record && n == 1) {
        r = ops->event->encode_record_info(ops, src_ctx, runs[0].part, runs[0].first, out);
    } else if (r == 0) {
        r = ops->event->encode_batch_info(ops, src_ctx, runs, n_runs, out);
    }
    if (r == 0 && payload) {
        r = sl_buf_puts(out, ",\"payload\":");
        r = r < 0 ? r : sl_buf_append(out, payload, payload_len);
    }
    r = r < 0 ? r : sl_buf_puts(out, "}");
    return r;
}
