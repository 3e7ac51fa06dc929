/* SPDX-License-Identifier: Apache-2.0 */
/* ckpt_json.h: the checkpoint store's file format (ckpt_json.c), for checkpoint.c only. */
#ifndef SL_CKPT_JSON_H
#define SL_CKPT_JSON_H

#include <stddef.h>

#include "buf.h"
#include "ckpt_table.h"

/* Writes t as the store's file of mapping_id into b (emptied first). Returns 0 or SL_ENOMEM. */
SL_NODISCARD int ckpt_json_encode(struct ckpt_table *t, const char *mapping_id, struct sl_buf *b);

/* Reads text[0..len), the file at path (named in errors), into t, which must be empty.
 * Returns 0, SL_EIO (errbuf names the file and what is wrong with it) or SL_ENOMEM. */
SL_NODISCARD int ckpt_json_decode(struct ckpt_table *t,
                                  const char *path,
                                  const char *mapping_id,
                                  const char *text,
                                  size_t len,
                                  char *errbuf,
                                  size_t errlen);

#endif
