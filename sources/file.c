/* SPDX-License-Identifier: Apache-2.0 */
typedef int sl_placeholder_file;
