/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_TEST_HTTP_PEER_H
#define SL_TEST_HTTP_PEER_H

/* The other end of the HTTP the sinks, the functions and the HTTP client speak, for their unit
 * tests and test_httpc's check of what a signed request carries (http_peer.c): a loopback
 * HTTP/1.1 server that hands each request to the test to answer (one request per connection,
 * served in turn; or keep-alive, a thread per connection), and blocking calls to fauxqs
 * (SQS_ENDPOINT). Failures fail the running cmocka test. */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

/* Answers one request: head[0..head_len) is the request line and headers (up to and with the
 * blank line), body[0..body_len) the body (Content-Length). Writes the whole response on fd
 * (http_peer_send_all). The server closes fd after, or, keep-alive, reads the connection's next
 * request: an answer that ends the connection there (no Content-Length) shuts its writing side
 * (shutdown(fd, SHUT_WR)). "Expect: 100-continue" was answered already. Runs on the server's
 * thread (keep-alive: the connection's). */
typedef void (*http_peer_answer_fn)(
    void *arg, int fd, const char *head, size_t head_len, const char *body, size_t body_len);

#define HTTP_PEER_MAX_CONNS 64 /* keep-alive: connections a server serves in its life */

/* A server. */
struct http_peer {
    int lfd;
    int port; /* on 127.0.0.1 */
    int stop_pipe[2];
    pthread_t thr;
    http_peer_answer_fn answer;
    void *arg;
    bool keep_alive;
    pthread_mutex_t mu; /* guards what follows */
    int n_conns;        /* connections accepted */
    pthread_t conn_thr[HTTP_PEER_MAX_CONNS];
    int n_conn_thr;
};

/* Starts p listening on a free loopback port, answering with answer(arg, ...): one request per
 * connection, served in turn. */
void http_peer_start(struct http_peer *p, http_peer_answer_fn answer, void *arg);
/* The same, keep-alive: each connection on a thread of its own, its requests answered in turn
 * until the client closes it (as a real server: a client may reuse a connection, and one
 * connection may hang while others are served). */
void http_peer_start_keep_alive(struct http_peer *p, http_peer_answer_fn answer, void *arg);
/* Stops the threads (a request being read is dropped) and closes p's descriptors. */
void http_peer_stop(struct http_peer *p);
/* Connections accepted so far. Any thread. */
int http_peer_conns(struct http_peer *p);
/* For an answer that never comes: reads and drops what arrives on fd until the client closes it
 * or the server stops. */
void http_peer_hang(struct http_peer *p, int fd);

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
