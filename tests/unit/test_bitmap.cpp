/*
 * Unit tests: ClusterBitmap.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_bitmap.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace {

using intellicache::ClusterBitmap;

TEST(Bitmap, StartsClear) {
    const ClusterBitmap b(130);
    EXPECT_EQ(b.size(), 130U);
    EXPECT_EQ(b.count(), 0U);
    EXPECT_EQ(b.word_count(), 3U);
    for (uint64_t i = 0; i < 130; i++) {
        EXPECT_FALSE(b.test(i));
    }
}

TEST(Bitmap, SetTestClear) {
    ClusterBitmap b(200);
    EXPECT_EQ(b.set(0), 1U);
    EXPECT_EQ(b.set(63), 1U);
    EXPECT_EQ(b.set(64), 1U);
    EXPECT_EQ(b.set(199), 1U);
    EXPECT_EQ(b.set(64), 0U); /* already set: no change */
    EXPECT_EQ(b.count(), 4U);
    EXPECT_TRUE(b.test(0));
    EXPECT_TRUE(b.test(63));
    EXPECT_TRUE(b.test(64));
    EXPECT_TRUE(b.test(199));
    EXPECT_FALSE(b.test(1));
    EXPECT_FALSE(b.test(62));
    EXPECT_FALSE(b.test(65));
    EXPECT_EQ(b.clear(63), 1U);
    EXPECT_EQ(b.clear(63), 0U);
    EXPECT_FALSE(b.test(63));
    EXPECT_EQ(b.count(), 3U);
}

TEST(Bitmap, OutOfRangeIsIgnored) {
    ClusterBitmap b(70);
    EXPECT_EQ(b.set(70), 0U);
    EXPECT_EQ(b.set(1000), 0U);
    EXPECT_FALSE(b.test(70));
    EXPECT_EQ(b.count(), 0U);
    /* A range running past the end is clipped. */
    EXPECT_EQ(b.set_range(60, 100), 10U);
    EXPECT_EQ(b.count(), 10U);
    EXPECT_EQ(b.word(1), 0x3FU);
    EXPECT_EQ(b.word(5), 0U);
}

TEST(Bitmap, RangesAcrossWords) {
    ClusterBitmap b(300);
    EXPECT_EQ(b.set_range(10, 200), 200U);
    EXPECT_EQ(b.count(), 200U);
    EXPECT_FALSE(b.test(9));
    EXPECT_TRUE(b.test(10));
    EXPECT_TRUE(b.test(209));
    EXPECT_FALSE(b.test(210));
    EXPECT_EQ(b.set_range(0, 20), 10U); /* 10..19 were already set */
    EXPECT_EQ(b.clear_range(64, 128), 128U);
    EXPECT_EQ(b.count(), 210U - 128U);
    EXPECT_EQ(b.word(1), 0U);
    EXPECT_EQ(b.word(2), 0U);
    EXPECT_EQ(b.word(0), ~uint64_t{0});
}

TEST(Bitmap, RunLengths) {
    ClusterBitmap b(500);
    b.set_range(60, 80); /* [60, 140) crosses two word boundaries */
    EXPECT_EQ(b.run_length(0, false, 1000), 60U);
    EXPECT_EQ(b.run_length(0, false, 10), 10U);
    EXPECT_EQ(b.run_length(0, true, 1000), 0U);
    EXPECT_EQ(b.run_length(60, true, 1000), 80U);
    EXPECT_EQ(b.run_length(63, true, 1000), 77U);
    EXPECT_EQ(b.run_length(64, true, 1000), 76U);
    EXPECT_EQ(b.run_length(64, true, 5), 5U);
    EXPECT_EQ(b.run_length(139, true, 1000), 1U);
    EXPECT_EQ(b.run_length(140, true, 1000), 0U);
    /* A run of zeros to the end stops at size(), not at the word end. */
    EXPECT_EQ(b.run_length(140, false, 1000), 360U);
    EXPECT_EQ(b.run_length(499, false, 1000), 1U);
    EXPECT_EQ(b.run_length(500, false, 1000), 0U);
    EXPECT_EQ(b.run_length(0, false, 0), 0U);
}

TEST(Bitmap, RunOfOnesToTheEnd) {
    ClusterBitmap b(130);
    b.set_range(0, 130);
    EXPECT_EQ(b.count(), 130U);
    EXPECT_EQ(b.run_length(0, true, 1000), 130U);
    EXPECT_EQ(b.run_length(129, true, 1000), 1U);
    EXPECT_EQ(b.run_length(5, false, 1000), 0U);
}

TEST(Bitmap, MergeWordDropsBitsBeyondSize) {
    ClusterBitmap b(70);
    EXPECT_EQ(b.merge_word(1, ~uint64_t{0}), 6U);
    EXPECT_EQ(b.count(), 6U);
    EXPECT_EQ(b.word(1), 0x3FU);
    EXPECT_EQ(b.merge_word(1, 0x3), 0U); /* already set */
    EXPECT_EQ(b.merge_word(2, 1), 0U);   /* no such word */
    EXPECT_EQ(b.merge_word(0, 0x5), 2U);
    EXPECT_EQ(b.count(), 8U);
}

TEST(Bitmap, OneBitPerCluster) {
    /* 1 TiB at 64 KiB clusters: 16 Mi clusters in 2 MiB of words. */
    const ClusterBitmap b(uint64_t{1} << 24);
    EXPECT_EQ(b.word_count() * sizeof(uint64_t), size_t{2} << 20);
    EXPECT_EQ(b.run_length(0, false, UINT64_MAX), uint64_t{1} << 24);
}

TEST(Bitmap, RandomAgainstModel) {
    std::mt19937_64 rng(12345);
    const uint64_t n = 1000;
    ClusterBitmap b(n);
    std::vector<bool> model(n, false);
    for (int round = 0; round < 2000; round++) {
        const uint64_t first = rng() % n;
        const uint64_t len = rng() % 150;
        const bool set = (rng() & 1) != 0;
        uint64_t expect_changed = 0;
        for (uint64_t i = first; i < std::min(n, first + len); i++) {
            expect_changed += model[i] != set ? 1 : 0;
            model[i] = set;
        }
        const uint64_t changed =
            set ? b.set_range(first, len) : b.clear_range(first, len);
        ASSERT_EQ(changed, expect_changed);

        const uint64_t from = rng() % (n + 1);
        const bool value = (rng() & 1) != 0;
        const uint64_t limit = rng() % 300;
        uint64_t expect_run = 0;
        while (from + expect_run < n && expect_run < limit &&
               model[from + expect_run] == value) {
            expect_run++;
        }
        ASSERT_EQ(b.run_length(from, value, limit), expect_run)
            << "from " << from << " value " << value << " limit " << limit;
    }
    uint64_t count = 0;
    for (uint64_t i = 0; i < n; i++) {
        ASSERT_EQ(b.test(i), model[i]) << i;
        count += model[i] ? 1 : 0;
    }
    EXPECT_EQ(b.count(), count);
}

} // namespace
