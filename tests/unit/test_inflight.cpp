/*
 * Unit tests: InflightTable.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_inflight.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace {

using intellicache::FetchState;
using intellicache::InflightTable;

constexpr uint64_t kNone = std::numeric_limits<uint64_t>::max();

TEST(Inflight, IdsAreMonotonicFromOne) {
    InflightTable t;
    EXPECT_EQ(t.add(10, 2).id, 1U);
    EXPECT_EQ(t.add(0, 1).id, 2U);
    EXPECT_TRUE(t.remove(1));
    /* Ids are never reused, even after removal. */
    EXPECT_EQ(t.add(10, 2).id, 3U);
    EXPECT_EQ(t.size(), 2U);
}

TEST(Inflight, FindAndRemove) {
    InflightTable t;
    auto &f = t.add(5, 3);
    EXPECT_EQ(f.first, 5U);
    EXPECT_EQ(f.count, 3U);
    EXPECT_EQ(f.state, FetchState::pending);
    EXPECT_EQ(f.opaque, nullptr);
    ASSERT_NE(t.find(f.id), nullptr);
    EXPECT_EQ(t.find(f.id)->first, 5U);
    EXPECT_EQ(t.find(99), nullptr);
    EXPECT_FALSE(t.remove(99));
    EXPECT_TRUE(t.remove(1));
    EXPECT_EQ(t.find(1), nullptr);
    EXPECT_EQ(t.size(), 0U);
}

TEST(Inflight, AroundFindsCoveringAndNext) {
    InflightTable t;
    const auto a = t.add(10, 5).id; /* [10, 15) */
    const auto b = t.add(20, 1).id; /* [20, 21) */

    auto n = t.around(0);
    EXPECT_EQ(n.covering, nullptr);
    EXPECT_EQ(n.next_first, 10U);

    n = t.around(10);
    ASSERT_NE(n.covering, nullptr);
    EXPECT_EQ(n.covering->id, a);
    EXPECT_EQ(n.next_first, 20U);

    n = t.around(14);
    ASSERT_NE(n.covering, nullptr);
    EXPECT_EQ(n.covering->id, a);

    n = t.around(15);
    EXPECT_EQ(n.covering, nullptr);
    EXPECT_EQ(n.next_first, 20U);

    n = t.around(20);
    ASSERT_NE(n.covering, nullptr);
    EXPECT_EQ(n.covering->id, b);
    EXPECT_EQ(n.next_first, kNone);

    n = t.around(21);
    EXPECT_EQ(n.covering, nullptr);
    EXPECT_EQ(n.next_first, kNone);
}

} // namespace
