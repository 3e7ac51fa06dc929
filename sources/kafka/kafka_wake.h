/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_KAFKA_WAKE_H
#define SL_KAFKA_WAKE_H

/* How a librdkafka client wakes the loop (kafka_wake.c): a pipe librdkafka writes to when a
 * queue becomes non-empty (rd_kafka_queue_io_event_enable with wfd) and a uv_poll on its read
 * end. The Kafka source's consumer and the kafka:// sink's producer both use it; what they write
 * to the pipe, when the watcher runs and how the pipe is read stay theirs. Loop thread only
 * (librdkafka's own threads only write to wfd). */

#include <stddef.h>

#include <uv.h>

/* The pipe and its watcher. Heap: freed, and the pipe closed, in the handle's close callback
 * (sl_kafka_wake_close). */
struct sl_kafka_wake {
    uv_poll_t poll; /* first: the close callback gets it as the handle; poll.data is the owner's */
    int rfd;        /* non-blocking, close-on-exec, like wfd */
    int wfd;
};

/* Opens the pipe and a stopped watcher on its read end, with poll.data = data. Returns 0 and
 * *ret (owned: sl_kafka_wake_close), SL_ENOMEM, or SL_EIO with errbuf saying what failed. */
int sl_kafka_wake_open(
    uv_loop_t *loop, void *data, struct sl_kafka_wake **ret, char *errbuf, size_t errlen);

/* Stops and closes the watcher; the pipe is closed and w freed once the loop has closed it. Every
 * queue must have stopped writing to wfd first (rd_kafka_queue_io_event_enable(q, -1, NULL, 0)):
 * a closed descriptor's number may be reused. NULL is allowed. */
void sl_kafka_wake_close(struct sl_kafka_wake *w);

#endif
