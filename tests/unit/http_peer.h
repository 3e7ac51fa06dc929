/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_TEST_HTTP_PEER_H
#define SL_TEST_HTTP_PEER_H

/* The other end of the HTTP the sinks speak, for their unit tests and test_httpc's check of
 * what a signed request carries (http_peer.c): a loopback HTTP/1.1 server on a thread of its
 * own that hands each request to the test to answer, and blocking calls to fauxqs
 * (SQS_ENDPOINT). Failures fail the running cmocka test. */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

/* Answers one request: head[0..head_len) is the request line and headers (up to and with the
 * blank line), body[0..body_len) the body (Content-Length). Writes the whole response on fd
 * (http_peer_send_all); the server closes fd after. Runs on the server's thread. */
typedef void (*http_peer_answer_fn)(
    void *arg, int fd, const char *head, size_t head_len, const char *body, size_t body_len);

/* A server: one request per connection, served in turn. */
struct http_peer {
    int lfd;
    int port; /* on 127.0.0.1 */
    int stop_pipe[2];
    pthread_t thr;
    http_peer_answer_fn answer;
    void *arg;
};

/* Starts p listening on a free loopback port, answering with answer(arg, ...). */
void http_peer_start(struct http_peer *p, http_peer_answer_fn answer, void *arg);
/* Stops the thread (a request being read is dropped) and closes p's descriptors. */
void http_peer_stop(struct http_peer *p);

/* A loopback socket listening on a free port; *ret_port its port. */
int http_peer_listen(int *ret_port);
/* The value of header name (case-insensitive) in head, after the colon and any spaces; NULL:
 * none. */
const char *http_peer_header(const char *head, size_t head_len, const char *name);
/* Writes p[0..n) on fd, whatever the kernel takes at a time; false: the peer went away. */
bool http_peer_send_all(int fd, const char *p, size_t n);

/* SQS_ENDPOINT, or skips the test (fails it under CI=true, where services always run). */
const char *sqs_peer_endpoint(void);
/* A blocking AWS JSON 1.0 call (AmazonSQS.action with body) to sqs_peer_endpoint(); returns the
 * parsed answer (owned; an empty answer is {}) and fails the test unless the status is
 * want_status. */
cJSON *sqs_peer_call(const char *action, const char *body, long want_status);

#endif
