/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_HTTPC_SOCK_H
#define SL_HTTPC_SOCK_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>
#include <uv.h>

#include "err.h"

/* The sockets of httpc.c's curl multi handle and the libuv polls that watch them, one
 * uv_poll_t per socket for as long as the socket is open. Loop thread only. */

/* Called when a watched socket is ready: flags are curl's CURL_CSELECT_* bits, for
 * curl_multi_socket_action. */
typedef void (*sl_httpc_sock_ready_cb)(void *arg, curl_socket_t fd, int flags);

struct httpc_sock;

struct sl_httpc_sock_table {
    uv_loop_t *loop;
    sl_httpc_sock_ready_cb ready;
    void *arg;
    struct httpc_sock **by_fd; /* indexed by descriptor; NULL: not watched */
    size_t cap;
};

void sl_httpc_sock_init(struct sl_httpc_sock_table *t,
                        uv_loop_t *loop,
                        sl_httpc_sock_ready_cb ready,
                        void *arg);
/* Closes the polls still open (sockets curl did not open through sl_httpc_sock_add) and frees
 * the table. Call after curl_multi_cleanup, which closes curl's own sockets. */
void sl_httpc_sock_fini(struct sl_httpc_sock_table *t);

/* Registers fd, a socket just opened for curl (its CURLOPT_OPENSOCKETFUNCTION), and gives it its
 * poll. Returns 0, or a negative errno (the caller closes fd). */
SL_NODISCARD int sl_httpc_sock_add(struct sl_httpc_sock_table *t, curl_socket_t fd);

/* CURLOPT_CLOSESOCKETFUNCTION with clientp = the table: closes the poll, then fd. */
int sl_httpc_sock_close(void *clientp, curl_socket_t fd);

/* CURLMOPT_SOCKETFUNCTION with userp = the table. */
int sl_httpc_sock_watch(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp);

#endif
