/*
 * Latency histograms, and where the bytes of user reads came from.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "ic_latency.hpp"
#include "unit_helpers.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <thread>
#include <vector>

namespace {

using intellicache::LatencyHistogram;

uint64_t total(const IcLatencySnapshot &snap) {
    return std::accumulate(std::begin(snap.bins), std::end(snap.bins),
                           uint64_t{0});
}

TEST(Latency, BinsAreLog2Microseconds) {
    EXPECT_EQ(LatencyHistogram::bin_of(0), 0U);
    EXPECT_EQ(LatencyHistogram::bin_of(999), 0U);
    EXPECT_EQ(LatencyHistogram::bin_of(1000), 1U);
    EXPECT_EQ(LatencyHistogram::bin_of(1999), 1U);
    EXPECT_EQ(LatencyHistogram::bin_of(2000), 2U);
    EXPECT_EQ(LatencyHistogram::bin_of(100'000), 7U); /* [64, 128) us */
    EXPECT_EQ(LatencyHistogram::bin_of(UINT64_MAX), IC_LATENCY_BINS - 1U);
    /* Each bin's bound is where the next bin starts. */
    for (unsigned i = 0; i + 1 < IC_LATENCY_BINS; i++) {
        const uint64_t bound = ic_latency_bound(i);
        EXPECT_EQ(LatencyHistogram::bin_of(bound - 1), i) << "bin " << i;
        EXPECT_EQ(LatencyHistogram::bin_of(bound), i + 1) << "bin " << i;
    }
    EXPECT_EQ(ic_latency_bound(IC_LATENCY_BINS - 2), 1000ULL << 26);
}

TEST(Latency, BoundOfTheLastBinIsAProtocolError) {
    EXPECT_DEATH(ic_latency_bound(IC_LATENCY_BINS - 1), "the last bin");
}

TEST(Latency, KindsAreApartAndSumsAdd) {
    IcLatency *lat = ic_latency_new();
    ASSERT_NE(lat, nullptr);
    ic_latency_record(lat, IC_LATENCY_HIT, 1500);
    ic_latency_record(lat, IC_LATENCY_HIT, 2500);
    ic_latency_record(lat, IC_LATENCY_FETCH, 3'000'000);
    IcLatencySnapshot hit;
    IcLatencySnapshot fetch;
    IcLatencySnapshot miss;
    ic_latency_get(lat, IC_LATENCY_HIT, &hit);
    ic_latency_get(lat, IC_LATENCY_FETCH, &fetch);
    ic_latency_get(lat, IC_LATENCY_MISS, &miss);
    EXPECT_EQ(hit.bins[1], 1U);
    EXPECT_EQ(hit.bins[2], 1U);
    EXPECT_EQ(total(hit), 2U);
    EXPECT_EQ(hit.sum_ns, 4000U);
    EXPECT_EQ(fetch.bins[LatencyHistogram::bin_of(3'000'000)], 1U);
    EXPECT_EQ(total(miss), 0U);
    ic_latency_free(lat);
}

/* Readers in several threads record without a lock; nothing is lost. */
TEST(Latency, ConcurrentRecordsAllCount) {
    IcLatency *lat = ic_latency_new();
    ASSERT_NE(lat, nullptr);
    constexpr unsigned kThreads = 4;
    constexpr uint64_t kEach = 100'000;
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < kThreads; t++) {
        threads.emplace_back([lat, t] {
            for (uint64_t i = 0; i < kEach; i++) {
                ic_latency_record(lat, IC_LATENCY_HIT, (i % 4096) << t);
            }
        });
    }
    for (std::thread &t : threads) {
        t.join();
    }
    IcLatencySnapshot snap;
    ic_latency_get(lat, IC_LATENCY_HIT, &snap);
    EXPECT_EQ(total(snap), kThreads * kEach);
    uint64_t sum = 0;
    for (unsigned t = 0; t < kThreads; t++) {
        for (uint64_t i = 0; i < kEach; i++) {
            sum += (i % 4096) << t;
        }
    }
    EXPECT_EQ(snap.sum_ns, sum);
    ic_latency_free(lat);
}

constexpr uint32_t kCs = 64 * 1024;
constexpr uint64_t kClusters = 64;

class Origins : public ::testing::Test {
protected:
    void SetUp() override {
        IcGeometry g;
        ASSERT_TRUE(ic_geometry_init(&g, kClusters * kCs, kCs, nullptr, 0));
        core_ = ic_core_new(&g, 3, 8 * kCs, 16, nullptr, 0);
        ASSERT_NE(core_, nullptr);
    }
    void TearDown() override { ic_core_free(core_); }

    IcStats stats() const {
        IcStats st;
        ic_core_get_stats(core_, &st);
        return st;
    }
    /* Clusters [first, first + count) loaded ahead, as read-ahead does. */
    void load_ahead(uint64_t first, uint64_t count) {
        IcSegment seg;
        ASSERT_EQ(
            ic_core_plan_read_ahead(core_, first * kCs, count * kCs, &seg), 1U);
        ASSERT_EQ(seg.kind, IC_SEG_FETCH);
        ASSERT_TRUE(unit::store_fetch(core_, seg));
    }
    /* A user read that must hit. */
    void hit(uint64_t offset, uint64_t bytes) {
        IcSegment seg;
        ASSERT_EQ(ic_core_plan(core_, offset, bytes, &seg, 1), 1U);
        ASSERT_EQ(seg.kind, IC_SEG_HIT) << "at " << offset;
    }

    IcCore *core_ = nullptr;
};

/*
 * A sequential reader in 4 KiB reads behind its read-ahead reads data
 * loaded ahead until it has read each cluster to its end.
 */
TEST_F(Origins, FirstPassOverReadAheadDataIsAhead) {
    load_ahead(0, 4);
    for (uint64_t off = 0; off < 4 * kCs; off += 4096) {
        hit(off, 4096);
    }
    EXPECT_EQ(stats().hit_bytes, 4 * kCs);
    EXPECT_EQ(stats().hit_ahead_bytes, 4 * kCs);
    /* The second pass is the cache's own. */
    for (uint64_t off = 0; off < 4 * kCs; off += 4096) {
        hit(off, 4096);
    }
    EXPECT_EQ(stats().hit_bytes, 8 * kCs);
    EXPECT_EQ(stats().hit_ahead_bytes, 4 * kCs);
}

/* A read across clusters counts each cluster's part by its origin. */
TEST_F(Origins, ReadAcrossClustersSplitsByCluster) {
    ASSERT_TRUE(unit::read_and_store(core_, 0, kCs)); /* a user's miss */
    load_ahead(1, 1);
    hit(kCs / 2, kCs); /* half of cluster 0, half of cluster 1 */
    EXPECT_EQ(stats().hit_bytes, kCs);
    EXPECT_EQ(stats().hit_ahead_bytes, kCs / 2);
    /* Cluster 1 was not read to its end: still its first pass. */
    hit(kCs + kCs / 2, kCs / 2);
    EXPECT_EQ(stats().hit_ahead_bytes, kCs);
    hit(kCs, 4096);
    EXPECT_EQ(stats().hit_ahead_bytes, kCs) << "read to its end before";
    EXPECT_EQ(stats().miss_bytes, kCs);
}

/* A hit that the base served because the cache file failed is a miss. */
TEST_F(Origins, HitServedByTheBaseIsAMiss) {
    load_ahead(0, 2);
    hit(0, 2 * kCs);
    ASSERT_EQ(stats().hit_bytes, 2 * kCs);
    ic_core_note_hit_failed(core_, kCs);
    EXPECT_EQ(stats().hit_bytes, kCs);
    EXPECT_EQ(stats().miss_bytes, kCs);
    EXPECT_LE(stats().hit_ahead_bytes, stats().hit_bytes);
    /* Never below zero, whatever the caller says. */
    ic_core_note_hit_failed(core_, 4 * kCs);
    EXPECT_EQ(stats().hit_bytes, 0U);
    EXPECT_EQ(stats().hit_ahead_bytes, 0U);
    EXPECT_EQ(stats().miss_bytes, 5 * kCs);
}

/*
 * A reader that joins a read-ahead fetch in flight reads its data before
 * it is stored: what it went through to the end is not "ahead" after.
 */
TEST_F(Origins, DataReadWhileInFlightIsNotAheadOnceStored) {
    IcSegment ra;
    ASSERT_EQ(ic_core_plan_read_ahead(core_, 0, 4 * kCs, &ra), 1U);
    ASSERT_EQ(ra.kind, IC_SEG_FETCH);
    IcSegment seg;
    /* Through clusters 0 and 1, and half of cluster 2. */
    ASSERT_EQ(ic_core_plan(core_, 0, 2 * kCs + kCs / 2, &seg, 1), 1U);
    ASSERT_EQ(seg.kind, IC_SEG_WAIT);
    ASSERT_TRUE(unit::store_fetch(core_, ra));
    hit(0, 2 * kCs);
    EXPECT_EQ(stats().hit_ahead_bytes, 0U);
    hit(2 * kCs, 2 * kCs);
    EXPECT_EQ(stats().hit_ahead_bytes, 2 * kCs);
}

/* What the reader missed itself is never "ahead", nor are zero fills. */
TEST_F(Origins, MissesAndZerosAreNotAhead) {
    ASSERT_TRUE(unit::read_and_store(core_, 2 * kCs, kCs));
    IcSegment seg;
    ASSERT_EQ(ic_core_plan_zeros(core_, 5 * kCs, kCs, &seg), 1U);
    ASSERT_TRUE(unit::store_fetch(core_, seg));
    hit(2 * kCs, kCs);
    hit(5 * kCs, kCs);
    EXPECT_EQ(stats().hit_bytes, 2 * kCs);
    EXPECT_EQ(stats().hit_ahead_bytes, 0U);
}

} // namespace
