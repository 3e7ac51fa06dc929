/* SPDX-License-Identifier: Apache-2.0 */
/* placeholder */
typedef int sl_placeholder_mapping;
