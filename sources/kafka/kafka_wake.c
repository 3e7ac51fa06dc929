/* SPDX-License-Identifier: Apache-2.0 */
/* kafka_wake.c: the wake-up pipe of a librdkafka client and its uv_poll (kafka_wake.h), in one
 * place for the Kafka source's consumer and the kafka:// sink's producer, which wake the loop
 * the same way. It owns the two descriptors and the handle, and frees them in the handle's close
 * callback, never before the loop is done with the handle. Loop thread only. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "err.h"
#include "kafka_wake.h"

int sl_kafka_wake_open(
    uv_loop_t *loop, void *data, struct sl_kafka_wake **ret, char *errbuf, size_t errlen)
{
    int fds[2];
    struct sl_kafka_wake *w = sl_calloc(1, sizeof(*w));
    if (!w) {
        return SL_ENOMEM;
    }
    if (pipe(fds) < 0) {
        (void)snprintf(errbuf, errlen, "pipe: %s", strerror(errno));
        sl_free(w);
        return SL_EIO;
    }
    for (int i = 0; i < 2; i++) {
        (void)fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        (void)fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    }
    w->rfd = fds[0];
    w->wfd = fds[1];
    if (uv_poll_init(loop, &w->poll, w->rfd) < 0) {
        (void)snprintf(errbuf, errlen, "cannot watch the wake-up pipe");
        (void)close(fds[0]);
        (void)close(fds[1]);
        sl_free(w);
        return SL_EIO;
    }
    w->poll.data = data;
    *ret = w;
    return 0;
}

static void kafka_wake_closed(uv_handle_t *h)
{
    struct sl_kafka_wake *w = (struct sl_kafka_wake *)h;
    (void)close(w->rfd);
    (void)close(w->wfd);
    sl_free(w);
}

void sl_kafka_wake_close(struct sl_kafka_wake *w)
{
    if (!w) {
        return;
    }
    (void)uv_poll_stop(&w->poll);
    uv_close((uv_handle_t *)&w->poll, kafka_wake_closed);
}
