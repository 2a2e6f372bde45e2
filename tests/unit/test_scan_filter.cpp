/*
 * Unit tests: spotting scans (ScanFilter).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_scan_filter.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace {

using intellicache::ScanFilter;

constexpr uint64_t kMiB = 1024 * 1024;

TEST(ScanFilter, ThresholdZeroNeverScans) {
    ScanFilter f(0);
    for (uint64_t off = 0; off < 64 * kMiB; off += kMiB) {
        EXPECT_FALSE(f.note_read(off, kMiB));
    }
    EXPECT_FALSE(f.in_scan(0));
}

TEST(ScanFilter, AStreamBecomesAScanAtTheThreshold) {
    ScanFilter f(4 * kMiB);
    EXPECT_FALSE(f.note_read(0, kMiB));
    EXPECT_FALSE(f.note_read(kMiB, kMiB));
    EXPECT_FALSE(f.note_read(2 * kMiB, kMiB));
    EXPECT_FALSE(f.in_scan(0)) << "3 MiB so far";
    EXPECT_TRUE(f.note_read(3 * kMiB, kMiB)) << "4 MiB: the threshold";
    EXPECT_TRUE(f.in_scan(0));
    EXPECT_TRUE(f.in_scan(4 * kMiB - 1));
    EXPECT_FALSE(f.in_scan(4 * kMiB)) << "not read yet";
    EXPECT_TRUE(f.note_read(4 * kMiB, 4096));
}

TEST(ScanFilter, RandomReadsAreNotScans) {
    ScanFilter f(kMiB);
    uint64_t x = 12345;
    for (int i = 0; i < 10000; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        const uint64_t off = (x >> 20) % (1024 * kMiB) / 4096 * 4096;
        EXPECT_FALSE(f.note_read(off, 64 * 1024)) << i;
    }
}

/* A scan goes on while random reads happen elsewhere (another VM). */
TEST(ScanFilter, InterleavedStreamsAreFollowedApart) {
    ScanFilter f(8 * kMiB);
    uint64_t scan = 0;
    uint64_t boot = 512 * kMiB;
    bool scanning = false;
    for (int i = 0; i < 16; i++) {
        scanning = f.note_read(scan, kMiB);
        scan += kMiB;
        EXPECT_FALSE(f.note_read(boot, 64 * 1024)) << "short reads elsewhere";
        boot += 1024 * 1024 * 3; /* not sequential */
    }
    EXPECT_TRUE(scanning);
    EXPECT_TRUE(f.in_scan(scan - 1));
    EXPECT_FALSE(f.in_scan(512 * kMiB));
}

/* Only ScanFilter::kStreams streams are followed: the least recently used
 * goes first, and starts afresh when it comes back. */
TEST(ScanFilter, LeastRecentlyUsedStreamIsReplaced) {
    ScanFilter f(2 * kMiB);
    ASSERT_FALSE(f.note_read(0, kMiB));
    for (unsigned i = 1; i <= ScanFilter::kStreams; i++) {
        ASSERT_FALSE(f.note_read(i * 100 * kMiB, kMiB));
    }
    EXPECT_FALSE(f.note_read(kMiB, kMiB)) << "stream 0 was replaced";
    EXPECT_TRUE(f.note_read(2 * kMiB, kMiB)) << "then followed again";
}

TEST(ScanFilter, ThresholdChangesApplyToStreamsFollowed) {
    ScanFilter f(100 * kMiB);
    for (uint64_t off = 0; off < 10 * kMiB; off += kMiB) {
        ASSERT_FALSE(f.note_read(off, kMiB));
    }
    f.set_threshold(10 * kMiB);
    EXPECT_TRUE(f.in_scan(0));
    f.set_threshold(0);
    EXPECT_FALSE(f.in_scan(0));
    EXPECT_FALSE(f.note_read(10 * kMiB, kMiB));
}

/* A boot: scattered reads over a small region, several passes. */
TEST(ScanFilter, ScatteredReadsOverARegionAreNotAScan) {
    ScanFilter f(8 * kMiB);
    std::vector<uint64_t> order;
    for (uint64_t off = 0; off < 24 * kMiB; off += 64 * 1024) {
        order.push_back(512 * kMiB + off);
    }
    std::mt19937_64 rng(7);
    for (int pass = 0; pass < 3; pass++) {
        std::shuffle(order.begin(), order.end(), rng);
        for (const uint64_t off : order) {
            ASSERT_FALSE(f.note_read(off, 64 * 1024))
                << "pass " << pass << " at " << off;
        }
    }
}

/* A copy with many requests in flight: they arrive out of order. */
TEST(ScanFilter, ASequentialReadArrivingOutOfOrderIsAScan) {
    ScanFilter f(8 * kMiB);
    std::mt19937_64 rng(3);
    constexpr uint64_t kReq = 256 * 1024;
    bool scan = false;
    for (uint64_t base = 0; base < 64 * kMiB; base += 8 * kReq) {
        std::vector<uint64_t> batch;
        for (uint64_t i = 0; i < 8; i++) {
            batch.push_back(base + i * kReq);
        }
        std::shuffle(batch.begin(), batch.end(), rng);
        for (const uint64_t off : batch) {
            scan = f.note_read(off, kReq);
        }
    }
    EXPECT_TRUE(scan);
    EXPECT_TRUE(f.in_scan(32 * kMiB));
}

} // namespace
