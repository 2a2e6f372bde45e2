/*
 * Unit tests: ClusterRing.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_cluster_ring.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <random>

namespace {

using intellicache::ClusterRing;

TEST(ClusterRing, FifoOrderAcrossTheWrap) {
    ClusterRing r(3);
    EXPECT_TRUE(r.empty());
    EXPECT_EQ(r.slots(), 3U);
    r.push(10);
    r.push(11);
    r.push(12);
    EXPECT_TRUE(r.full());
    EXPECT_EQ(r.pop(), 10U);
    r.push(13); /* wraps to slot 0 */
    EXPECT_EQ(r.size(), 3U);
    EXPECT_EQ(r.front(), 11U);
    EXPECT_EQ(r.size(), 3U) << "front() leaves it";
    EXPECT_EQ(r.pop(), 11U);
    EXPECT_EQ(r.pop(), 12U);
    EXPECT_EQ(r.pop(), 13U);
    EXPECT_TRUE(r.empty());
}

TEST(ClusterRing, KeepsFullIndices) {
    ClusterRing r(1);
    r.push(0xFFFFFFFFU);
    EXPECT_EQ(r.pop(), 0xFFFFFFFFU);
}

TEST(ClusterRing, ResizeKeepsOrder) {
    ClusterRing r(4);
    for (std::uint32_t i = 0; i < 4; i++) {
        r.push(i);
    }
    EXPECT_EQ(r.pop(), 0U);
    EXPECT_EQ(r.pop(), 1U);
    r.push(4);
    r.push(5); /* contents 2 3 4 5, wrapped */
    r.resize(6);
    EXPECT_EQ(r.slots(), 6U);
    EXPECT_EQ(r.memory_bytes(), 6U * sizeof(std::uint32_t));
    r.push(6);
    r.push(7);
    EXPECT_TRUE(r.full());
    for (std::uint32_t i = 2; i < 8; i++) {
        EXPECT_EQ(r.pop(), i);
    }
    r.push(8);
    r.resize(1); /* shrinks to exactly what it holds */
    EXPECT_TRUE(r.full());
    EXPECT_EQ(r.pop(), 8U);
}

TEST(ClusterRing, MatchesADeque) {
    std::mt19937 rng(7);
    ClusterRing r(5);
    std::deque<std::uint32_t> model;
    for (int step = 0; step < 10000; step++) {
        const unsigned op = rng() % 8;
        if (op < 4 && !r.full()) {
            const std::uint32_t v = rng();
            r.push(v);
            model.push_back(v);
        } else if (op < 7 && !r.empty()) {
            ASSERT_EQ(r.pop(), model.front());
            model.pop_front();
        } else if (op == 7) {
            const std::uint64_t slots = model.size() + rng() % 6;
            r.resize(slots);
            ASSERT_EQ(r.slots(), slots);
        }
        ASSERT_EQ(r.size(), model.size());
    }
}

TEST(ClusterRingDeathTest, MisuseIsAProtocolError) {
    ClusterRing r(1);
    EXPECT_DEATH(r.pop(), "protocol error: pop from an empty ring");
    r.push(1);
    EXPECT_DEATH(r.push(2), "protocol error: push into a full ring of 1");
    EXPECT_DEATH(r.resize(0), "protocol error: ring of 1 indices resized");
}

} // namespace
