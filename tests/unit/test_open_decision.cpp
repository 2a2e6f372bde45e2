/*
 * Unit tests: what to do with a cache file at open (ic_open_decide).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include <gtest/gtest.h>

#include <array>

namespace {

struct Row {
    IcHeaderStatus status;
    /* The action for (base_readable, writable) = */
    IcOpenAction readable_writable;
    IcOpenAction readable_readonly;
    IcOpenAction unreadable_writable;
    IcOpenAction unreadable_readonly;
};

/*
 * Every status, every combination.  Unreadable base and writable file does
 * not happen in the glue (no I/O means neither), but the answer must still
 * be safe.
 */
constexpr std::array<Row, 9> kTable{{
    {IC_HEADER_OK, IC_OPEN_USE, IC_OPEN_USE, IC_OPEN_USE, IC_OPEN_USE},
    {IC_HEADER_EMPTY, IC_OPEN_FORMAT, IC_OPEN_EMPTY, IC_OPEN_FORMAT,
     IC_OPEN_EMPTY},
    {IC_HEADER_FOREIGN, IC_OPEN_REFUSE, IC_OPEN_REFUSE, IC_OPEN_REFUSE,
     IC_OPEN_REFUSE},
    {IC_HEADER_TRUNCATED, IC_OPEN_RESET, IC_OPEN_EMPTY, IC_OPEN_RESET,
     IC_OPEN_EMPTY},
    {IC_HEADER_CORRUPT, IC_OPEN_RESET, IC_OPEN_EMPTY, IC_OPEN_RESET,
     IC_OPEN_EMPTY},
    {IC_HEADER_VERSION, IC_OPEN_RESET, IC_OPEN_EMPTY, IC_OPEN_RESET,
     IC_OPEN_EMPTY},
    {IC_HEADER_CLUSTER_SIZE, IC_OPEN_RESET, IC_OPEN_EMPTY, IC_OPEN_RESET,
     IC_OPEN_EMPTY},
    {IC_HEADER_BASE_SIZE, IC_OPEN_RESET, IC_OPEN_EMPTY, IC_OPEN_RESET,
     IC_OPEN_EMPTY},
    /* Without the base the expected fingerprint is unknown: a cache that
     * is otherwise valid is used as recorded. */
    {IC_HEADER_FINGERPRINT, IC_OPEN_RESET, IC_OPEN_EMPTY, IC_OPEN_USE,
     IC_OPEN_USE},
}};

TEST(OpenDecision, EveryStatusAndCombination) {
    for (const Row &row : kTable) {
        SCOPED_TRACE(testing::Message() << "status " << row.status);
        EXPECT_EQ(ic_open_decide(row.status, true, true),
                  row.readable_writable);
        EXPECT_EQ(ic_open_decide(row.status, true, false),
                  row.readable_readonly);
        EXPECT_EQ(ic_open_decide(row.status, false, true),
                  row.unreadable_writable);
        EXPECT_EQ(ic_open_decide(row.status, false, false),
                  row.unreadable_readonly);
    }
}

TEST(OpenDecision, TableCoversEveryStatus) {
    /* A status added to the header must be added to the table. */
    std::array<bool, kTable.size()> seen{};
    for (const Row &row : kTable) {
        ASSERT_LT(static_cast<size_t>(row.status), seen.size());
        EXPECT_FALSE(seen[row.status]) << "status listed twice";
        seen[row.status] = true;
    }
    EXPECT_EQ(IC_HEADER_FINGERPRINT + 1, static_cast<int>(kTable.size()));
}

TEST(OpenDecision, NothingIsWrittenWhenNotWritable) {
    for (int s = IC_HEADER_OK; s <= IC_HEADER_FINGERPRINT; s++) {
        for (const bool readable : {true, false}) {
            const IcOpenAction a =
                ic_open_decide(static_cast<IcHeaderStatus>(s), readable, false);
            EXPECT_NE(a, IC_OPEN_FORMAT) << s;
            EXPECT_NE(a, IC_OPEN_RESET) << s;
        }
    }
}

/* Values the enumeration can hold in C++ (its range is 0 to 15) that are
 * no status: what a newer header could pass to an older core. */
TEST(OpenDecision, UnknownStatusIsRefused) {
    EXPECT_EQ(ic_open_decide(static_cast<IcHeaderStatus>(9), true, true),
              IC_OPEN_REFUSE);
    EXPECT_EQ(ic_open_decide(static_cast<IcHeaderStatus>(15), false, true),
              IC_OPEN_REFUSE);
}

/* Without the base, only a valid cache is used; nothing is ever written. */
TEST(OpenDecision, WithoutTheBaseOnlyAValidCacheIsUsed) {
    EXPECT_EQ(ic_open_decide_without_base(IC_HEADER_OK), IC_OPEN_USE);
    for (int s = IC_HEADER_EMPTY; s <= IC_HEADER_FINGERPRINT; s++) {
        EXPECT_EQ(ic_open_decide_without_base(static_cast<IcHeaderStatus>(s)),
                  IC_OPEN_REFUSE)
            << s;
    }
    EXPECT_EQ(ic_open_decide_without_base(static_cast<IcHeaderStatus>(15)),
              IC_OPEN_REFUSE);
}

} // namespace
