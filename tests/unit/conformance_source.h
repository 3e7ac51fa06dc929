/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_TEST_CONFORMANCE_SOURCE_H
#define SL_TEST_CONFORMANCE_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "source.h"

/* The source conformance suite: what every *stream* source adapter must do, checked the same
 * way for each, with the harness standing in for the mapping (it owns the partitions and gives
 * the env callbacks). An adapter joins by filling a struct conf_source (how to make a source
 * that holds given records, add one, and end the partition) and calling each conf_source_check_*
 * from a cmocka test (tests/unit/test_conformance.c). Waits are bounded by real-time deadlines
 * on the loop (test_run_until), never sleeps; the source gets a fake clock that the harness moves
 * forward while it waits, so time-based decisions (a rotated file's rotate_wait) come due.
 * Loop thread. */

struct conf_source {
    const char *name; /* for messages */
    void *arg;        /* the driver's */
    /* Makes a source holding exactly one partition with the records data[0..n) (text without
     * newlines), in order. Writes the EventSourceArn into arn and returns the adapter's options
     * as a JSON object (owned by the caller; NULL: defaults). Called once per check, before the
     * first instance starts; a second instance of the same check reads the same source. */
    cJSON *(*prepare)(void *arg, const char *const *data, size_t n, char *arn, size_t len);
    /* Adds one record at the end of the partition (the source is running). */
    void (*append)(void *arg, const char *data);
    /* Ends the partition: it will produce nothing more (a file deleted, a fake's part_gone). */
    void (*end)(void *arg);
};

/* part_add: after start, the source reports its partition (id and name set, part->src set
 * before it returns to the loop). */
void conf_source_check_partitions_appear(const struct conf_source *cs);
/* fetch: the records in order, each with pos < next_pos <= the next record's pos, within
 * max_records; 0 (or SL_EINPROGRESS, then part_fetched) when none, then part_wake once one is
 * added, and that record next. */
void conf_source_check_fetch_in_order(const struct conf_source *cs);
/* format_pos and format_item_id: item ids unique and non-empty; a new instance given
 * format_pos(record k) as its stored checkpoint (with the meta the source wrote) resumes at
 * record k + 1. */
void conf_source_check_positions_round_trip(const struct conf_source *cs);
/* ack after done: acknowledging the records in order, then dropping them, as the mapping does,
 * leaves fetch going on with the next record. */
void conf_source_check_ack_after_done(const struct conf_source *cs);
/* part_gone: once the partition ended and its records were fetched, part_gone comes once; after
 * part_release nothing of the partition is called back. */
void conf_source_check_part_gone(const struct conf_source *cs);
/* stop: no callback after it returns, whatever happens at the source; part_release and fini
 * then leave no handle open on the loop. */
void conf_source_check_stop(const struct conf_source *cs);

#endif
