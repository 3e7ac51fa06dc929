/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_MAPPING_STATS_H
#define SL_MAPPING_STATS_H

struct sl_mapping;

/* Logs the mapping's progress line (its counters, in_flight, lag, max_lag and partitions) with
 * msg as its message, and beside it a line of each partition's lag. */
void sl_mapping_log_stats(const struct sl_mapping *m, const char *msg);

#endif
