/* SPDX-License-Identifier: Apache-2.0 */
/* test_memo.c: the lanes' retry memos: a memo is taken back once, by partition and position
 * both, and the ring forgets its oldest memo when full. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "memo.h"

static void test_memo_take_matches_part_and_pos(void **state)
{
    (void)state;
    struct sl_memo *mm = sl_memo_new();
    assert_non_null(mm);
    sl_memo_put(mm, "orders-0", "17", 2, 3);
    unsigned attempts = 0;
    unsigned invokes = 0;
    assert_false(sl_memo_take(mm, "orders-1", "17", &attempts, &invokes));
    assert_false(sl_memo_take(mm, "orders-0", "18", &attempts, &invokes));
    assert_true(sl_memo_take(mm, "orders-0", "17", &attempts, &invokes));
    assert_int_equal(attempts, 2);
    assert_int_equal(invokes, 3);
    assert_false(sl_memo_take(mm, "orders-0", "17", &attempts, &invokes));
    sl_memo_free(mm);
    sl_memo_free(NULL);
}

static void test_memo_ring_forgets_oldest(void **state)
{
    (void)state;
    struct sl_memo *mm = sl_memo_new();
    assert_non_null(mm);
    char pos[16];
    for (unsigned i = 0; i <= SL_MEMO_SLOTS; i++) {
        (void)snprintf(pos, sizeof(pos), "%u", i);
        sl_memo_put(mm, "p", pos, i, i);
    }
    unsigned attempts = 0;
    unsigned invokes = 0;
    assert_false(sl_memo_take(mm, "p", "0", &attempts, &invokes));
    (void)snprintf(pos, sizeof(pos), "%u", SL_MEMO_SLOTS);
    assert_true(sl_memo_take(mm, "p", pos, &attempts, &invokes));
    assert_int_equal(attempts, SL_MEMO_SLOTS);
    assert_true(sl_memo_take(mm, "p", "1", &attempts, &invokes));
    assert_int_equal(invokes, 1);
    sl_memo_free(mm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memo_take_matches_part_and_pos),
        cmocka_unit_test(test_memo_ring_forgets_oldest),
    };
    return cmocka_run_group_tests_name("memo", tests, NULL, NULL);
}
