/*
 * Unit tests: read planning and the fetch lifecycle (Core / Planner).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "alloc_counter.hpp"
#include "ic_core.hpp"
#include "unit_helpers.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace {

using intellicache::Core;
using unit::expect_coverage;
using unit::kMiB;

constexpr uint64_t kCs = 64 * 1024;

class PlannerTest : public ::testing::Test {
protected:
    void make(uint64_t base_size, uint64_t max_fetch = kMiB,
              uint32_t cluster_size = kCs) {
        char why[128];
        ASSERT_TRUE(ic_geometry_init(&geometry_, base_size, cluster_size, why,
                                     sizeof(why)))
            << why;
        core_ = unit::make_core(geometry_, 42, max_fetch);
        ASSERT_NE(core_, nullptr);
    }

    std::vector<IcSegment> plan(uint64_t offset, uint64_t bytes,
                                size_t max_segs = 64) {
        std::vector<IcSegment> segs(max_segs);
        const size_t n = core_->plan(offset, bytes, segs);
        EXPECT_LE(n, max_segs);
        segs.resize(n);
        return segs;
    }

    /* Plans clusters [first, first + count) and stores every fetch. */
    void populate(uint64_t first, uint64_t count) {
        for (const IcSegment &s : plan(first * kCs, count * kCs)) {
            ASSERT_EQ(s.kind, IC_SEG_FETCH);
            core_->fetch_done(s.fetch, true);
            core_->fetch_stored(s.fetch, true);
        }
    }

    IcStats stats() const { return core_->stats(); }
    uint64_t data(uint64_t guest_offset) const {
        return geometry_.data_offset + guest_offset;
    }

    IcGeometry geometry_{};
    std::unique_ptr<Core> core_;
};

TEST_F(PlannerTest, AllMissSplitsAtMaxFetch) {
    make(16 * kMiB);
    const auto segs = plan(0, 4 * kMiB);
    ASSERT_EQ(segs.size(), 4U);
    for (size_t i = 0; i < segs.size(); i++) {
        EXPECT_EQ(segs[i].kind, IC_SEG_FETCH);
        EXPECT_EQ(segs[i].offset, i * kMiB);
        EXPECT_EQ(segs[i].bytes, kMiB);
        EXPECT_EQ(segs[i].fetch, i + 1);
        EXPECT_EQ(segs[i].fetch_offset, i * kMiB);
        EXPECT_EQ(segs[i].fetch_bytes, kMiB);
        EXPECT_EQ(segs[i].opaque, nullptr);
    }
    const IcStats st = stats();
    EXPECT_EQ(st.fetches, 4U);
    EXPECT_EQ(st.miss_bytes, 4 * kMiB);
    EXPECT_EQ(st.hit_bytes, 0U);
    EXPECT_EQ(st.inflight_fetches, 4U);
}

TEST_F(PlannerTest, UnalignedRequestIsCoveredExactly) {
    make(16 * kMiB);
    const uint64_t off = 100;
    const uint64_t len = 3 * kCs + 5; /* ends inside cluster 3 */
    const auto segs = plan(off, len);
    ASSERT_EQ(segs.size(), 1U);
    expect_coverage(segs, off, len);
    EXPECT_EQ(segs[0].kind, IC_SEG_FETCH);
    /* The fetch is whole clusters even though the request is not. */
    EXPECT_EQ(segs[0].fetch_offset, 0U);
    EXPECT_EQ(segs[0].fetch_bytes, 4 * kCs);
    EXPECT_EQ(stats().miss_bytes, len);
}

TEST_F(PlannerTest, RequestWithinOneCluster) {
    make(16 * kMiB);
    const auto segs = plan(5 * kCs + 17, 33);
    ASSERT_EQ(segs.size(), 1U);
    expect_coverage(segs, 5 * kCs + 17, 33);
    EXPECT_EQ(segs[0].fetch_offset, 5 * kCs);
    EXPECT_EQ(segs[0].fetch_bytes, kCs);
}

TEST_F(PlannerTest, UnalignedRequestSpanningMaxFetch) {
    make(16 * kMiB);
    /* 16 clusters per fetch; the request touches clusters 1..33. */
    const uint64_t off = kCs + 1;
    const uint64_t len = 33 * kCs - 2;
    const auto segs = plan(off, len);
    ASSERT_EQ(segs.size(), 3U);
    expect_coverage(segs, off, len);
    EXPECT_EQ(segs[0].fetch_offset, kCs);
    EXPECT_EQ(segs[0].fetch_bytes, kMiB);
    EXPECT_EQ(segs[1].offset, 17 * kCs);
    EXPECT_EQ(segs[1].fetch_offset, 17 * kCs);
    EXPECT_EQ(segs[2].fetch_offset, 33 * kCs);
    EXPECT_EQ(segs[2].fetch_bytes, kCs);
}

TEST_F(PlannerTest, HitMissHitInterleaving) {
    make(16 * kMiB);
    populate(0, 2);
    populate(4, 2);
    const uint64_t off = 1000;
    const uint64_t len = 6 * kCs - 2000;
    const auto segs = plan(off, len);
    ASSERT_EQ(segs.size(), 3U);
    expect_coverage(segs, off, len);

    EXPECT_EQ(segs[0].kind, IC_SEG_HIT);
    EXPECT_EQ(segs[0].bytes, 2 * kCs - 1000);
    EXPECT_EQ(segs[0].cache_offset, data(1000));

    EXPECT_EQ(segs[1].kind, IC_SEG_FETCH);
    EXPECT_EQ(segs[1].offset, 2 * kCs);
    EXPECT_EQ(segs[1].bytes, 2 * kCs);
    EXPECT_EQ(segs[1].fetch_offset, 2 * kCs);
    EXPECT_EQ(segs[1].fetch_bytes, 2 * kCs);

    EXPECT_EQ(segs[2].kind, IC_SEG_HIT);
    EXPECT_EQ(segs[2].offset, 4 * kCs);
    EXPECT_EQ(segs[2].bytes, 2 * kCs - 1000);
    EXPECT_EQ(segs[2].cache_offset, data(4 * kCs));
}

TEST_F(PlannerTest, OverlapWithInflightFetchWaitsWithOpaque) {
    make(16 * kMiB);
    const auto first = plan(0, 4 * kCs);
    ASSERT_EQ(first.size(), 1U);
    const IcFetchId a = first[0].fetch;
    int marker = 0;
    core_->fetch_set_opaque(a, &marker);

    const uint64_t off = 2 * kCs + 7;
    const auto segs = plan(off, 6 * kCs - off);
    ASSERT_EQ(segs.size(), 2U);
    expect_coverage(segs, off, 6 * kCs - off);
    EXPECT_EQ(segs[0].kind, IC_SEG_WAIT);
    EXPECT_EQ(segs[0].fetch, a);
    EXPECT_EQ(segs[0].opaque, &marker);
    EXPECT_EQ(segs[0].bytes, 4 * kCs - off);
    EXPECT_EQ(segs[0].fetch_offset, 0U);
    EXPECT_EQ(segs[0].fetch_bytes, 4 * kCs);
    EXPECT_EQ(segs[1].kind, IC_SEG_FETCH);
    EXPECT_NE(segs[1].fetch, a);
    EXPECT_EQ(segs[1].fetch_offset, 4 * kCs);
    EXPECT_EQ(segs[1].fetch_bytes, 2 * kCs);
    EXPECT_EQ(stats().wait_bytes, 4 * kCs - off);
}

TEST_F(PlannerTest, IdenticalSecondRequestOnlyWaits) {
    make(16 * kMiB);
    const auto first = plan(123, 3 * kMiB);
    const auto second = plan(123, 3 * kMiB);
    ASSERT_EQ(first.size(), second.size());
    for (size_t i = 0; i < first.size(); i++) {
        EXPECT_EQ(first[i].kind, IC_SEG_FETCH);
        EXPECT_EQ(second[i].kind, IC_SEG_WAIT);
        EXPECT_EQ(second[i].fetch, first[i].fetch);
        EXPECT_EQ(second[i].offset, first[i].offset);
        EXPECT_EQ(second[i].bytes, first[i].bytes);
        EXPECT_EQ(second[i].fetch_offset, first[i].fetch_offset);
        EXPECT_EQ(second[i].fetch_bytes, first[i].fetch_bytes);
    }
    EXPECT_EQ(stats().fetches, first.size());
}

TEST_F(PlannerTest, OneWaitSegmentPerJoinedFetch) {
    make(16 * kMiB, 2 * kCs);
    ASSERT_EQ(plan(0, 6 * kCs).size(), 3U); /* fetches of 2 clusters */
    const auto segs = plan(kCs, 4 * kCs);
    ASSERT_EQ(segs.size(), 3U);
    expect_coverage(segs, kCs, 4 * kCs);
    EXPECT_EQ(segs[0].fetch, 1U);
    EXPECT_EQ(segs[0].bytes, kCs);
    EXPECT_EQ(segs[1].fetch, 2U);
    EXPECT_EQ(segs[1].bytes, 2 * kCs);
    EXPECT_EQ(segs[2].fetch, 3U);
    EXPECT_EQ(segs[2].bytes, kCs);
    for (const auto &s : segs) {
        EXPECT_EQ(s.kind, IC_SEG_WAIT);
    }
}

TEST_F(PlannerTest, NewFetchStopsAtInflightFetch) {
    make(16 * kMiB);
    const auto mid = plan(2 * kCs, kCs);
    ASSERT_EQ(mid.size(), 1U);
    const auto segs = plan(0, 5 * kCs);
    ASSERT_EQ(segs.size(), 3U);
    expect_coverage(segs, 0, 5 * kCs);
    EXPECT_EQ(segs[0].kind, IC_SEG_FETCH);
    EXPECT_EQ(segs[0].fetch_bytes, 2 * kCs);
    EXPECT_EQ(segs[1].kind, IC_SEG_WAIT);
    EXPECT_EQ(segs[1].fetch, mid[0].fetch);
    EXPECT_EQ(segs[2].kind, IC_SEG_FETCH);
    EXPECT_EQ(segs[2].fetch_offset, 3 * kCs);
    EXPECT_EQ(segs[2].fetch_bytes, 2 * kCs);
}

TEST_F(PlannerTest, FailedFetchIsFetchedAgain) {
    make(16 * kMiB);
    const auto first = plan(0, 2 * kCs);
    ASSERT_EQ(first.size(), 1U);
    core_->fetch_done(first[0].fetch, false);
    EXPECT_EQ(stats().fetch_errors, 1U);
    EXPECT_EQ(stats().inflight_fetches, 0U);
    EXPECT_EQ(stats().fetched_bytes, 0U);
    EXPECT_FALSE(core_->cluster_present(0));

    const auto again = plan(0, 2 * kCs);
    ASSERT_EQ(again.size(), 1U);
    EXPECT_EQ(again[0].kind, IC_SEG_FETCH);
    EXPECT_NE(again[0].fetch, first[0].fetch);
    EXPECT_EQ(again[0].fetch_offset, 0U);
    EXPECT_EQ(again[0].fetch_bytes, 2 * kCs);
    /* The failed id is dead: a late call with it is a glue bug. */
    EXPECT_DEATH(core_->fetch_done(first[0].fetch, true),
                 "ic_core_fetch_done\\(\\) of unknown fetch 1");
    EXPECT_DEATH(core_->fetch_stored(first[0].fetch, true),
                 "ic_core_fetch_stored\\(\\) of unknown fetch 1");
    EXPECT_FALSE(core_->cluster_present(0));
    EXPECT_EQ(stats().inflight_fetches, 1U);
}

TEST_F(PlannerTest, DoneFetchStillWaitsUntilStored) {
    make(16 * kMiB);
    const auto first = plan(kCs, 2 * kCs);
    const IcFetchId id = first[0].fetch;
    core_->fetch_done(id, true);
    EXPECT_EQ(stats().fetched_bytes, 2 * kCs);

    auto segs = plan(kCs, kCs);
    ASSERT_EQ(segs.size(), 1U);
    EXPECT_EQ(segs[0].kind, IC_SEG_WAIT);
    EXPECT_EQ(segs[0].fetch, id);

    core_->fetch_stored(id, true);
    EXPECT_TRUE(core_->cluster_present(1));
    EXPECT_TRUE(core_->cluster_present(2));
    EXPECT_FALSE(core_->cluster_present(3));
    const IcStats st = stats();
    EXPECT_EQ(st.stored_bytes, 2 * kCs);
    EXPECT_EQ(st.cached_clusters, 2U);
    EXPECT_EQ(st.inflight_fetches, 0U);

    segs = plan(kCs + 10, 2 * kCs - 20);
    ASSERT_EQ(segs.size(), 1U);
    EXPECT_EQ(segs[0].kind, IC_SEG_HIT);
    EXPECT_EQ(segs[0].cache_offset, data(kCs + 10));
    EXPECT_EQ(segs[0].bytes, 2 * kCs - 20);
    EXPECT_EQ(stats().hit_bytes, 2 * kCs - 20);
}

TEST_F(PlannerTest, FailedStoreLeavesClustersAbsent) {
    make(16 * kMiB);
    const auto first = plan(0, kCs);
    core_->fetch_done(first[0].fetch, true);
    core_->fetch_stored(first[0].fetch, false);
    EXPECT_FALSE(core_->cluster_present(0));
    EXPECT_EQ(stats().store_errors, 1U);
    EXPECT_EQ(stats().stored_bytes, 0U);
    EXPECT_EQ(stats().inflight_fetches, 0U);
    EXPECT_FALSE(core_->sync_needed());
    const auto again = plan(0, kCs);
    ASSERT_EQ(again.size(), 1U);
    EXPECT_EQ(again[0].kind, IC_SEG_FETCH);
}

TEST_F(PlannerTest, DroppedFetchIsSkippedNotAnError) {
    make(16 * kMiB);
    const auto first = plan(0, 2 * kCs);
    ASSERT_EQ(first.size(), 1U);
    core_->fetch_done(first[0].fetch, true);
    core_->fetch_dropped(first[0].fetch);
    EXPECT_FALSE(core_->cluster_present(0));
    EXPECT_FALSE(core_->cluster_present(1));
    EXPECT_EQ(stats().store_skipped, 1U);
    EXPECT_EQ(stats().store_errors, 0U);
    EXPECT_EQ(stats().stored_bytes, 0U);
    EXPECT_EQ(stats().inflight_fetches, 0U);
    EXPECT_FALSE(core_->sync_needed());
    /* Dropping a forgotten fetch is a glue bug. */
    EXPECT_DEATH(core_->fetch_dropped(first[0].fetch),
                 "ic_core_fetch_dropped\\(\\) of unknown fetch");
    EXPECT_EQ(stats().store_skipped, 1U);
    const auto again = plan(0, kCs);
    ASSERT_EQ(again.size(), 1U);
    EXPECT_EQ(again[0].kind, IC_SEG_FETCH);
}

TEST_F(PlannerTest, LastPartialClusterFetchIsClamped) {
    const uint64_t base = 3 * kCs + 100;
    make(base);
    auto segs = plan(3 * kCs + 10, 90);
    ASSERT_EQ(segs.size(), 1U);
    EXPECT_EQ(segs[0].fetch_offset, 3 * kCs);
    EXPECT_EQ(segs[0].fetch_bytes, 100U);
    core_->fetch_done(segs[0].fetch, true);
    EXPECT_EQ(stats().fetched_bytes, 100U);
    core_->fetch_stored(segs[0].fetch, true);
    EXPECT_EQ(stats().stored_bytes, 100U);

    segs = plan(0, base);
    ASSERT_EQ(segs.size(), 2U);
    expect_coverage(segs, 0, base);
    EXPECT_EQ(segs[0].kind, IC_SEG_FETCH);
    EXPECT_EQ(segs[0].fetch_bytes, 3 * kCs);
    EXPECT_EQ(segs[1].kind, IC_SEG_HIT);
    EXPECT_EQ(segs[1].bytes, 100U);
    EXPECT_EQ(segs[1].cache_offset, data(3 * kCs));
}

TEST_F(PlannerTest, WholeSmallBaseInOneFetch) {
    const uint64_t base = 3 * kCs + 1;
    make(base);
    const auto segs = plan(0, base);
    ASSERT_EQ(segs.size(), 1U);
    EXPECT_EQ(segs[0].fetch_bytes, base);
    EXPECT_EQ(segs[0].bytes, base);
}

TEST_F(PlannerTest, OneByteBase) {
    make(1);
    const auto segs = plan(0, 1);
    ASSERT_EQ(segs.size(), 1U);
    EXPECT_EQ(segs[0].kind, IC_SEG_FETCH);
    EXPECT_EQ(segs[0].fetch_bytes, 1U);
}

TEST_F(PlannerTest, MaxSegsReturnsPrefixAtSegmentBoundary) {
    make(16 * kMiB);
    populate(0, 1);
    populate(2, 1);
    populate(4, 1);
    /* present: 0, 2, 4; absent: 1, 3, 5 */
    const uint64_t len = 6 * kCs;
    auto segs = plan(0, len, 2);
    ASSERT_EQ(segs.size(), 2U);
    expect_coverage(segs, 0, len, true);
    EXPECT_EQ(segs[0].kind, IC_SEG_HIT);
    EXPECT_EQ(segs[1].kind, IC_SEG_FETCH);
    EXPECT_EQ(segs[1].fetch_offset, kCs);
    /* Only the returned fetch was registered: cluster 3 and 5 are free. */
    EXPECT_EQ(stats().inflight_fetches, 1U);

    /* The caller plans the rest afterwards. */
    uint64_t pos = segs[1].offset + segs[1].bytes;
    segs = plan(pos, len - pos, 1);
    ASSERT_EQ(segs.size(), 1U);
    EXPECT_EQ(segs[0].kind, IC_SEG_HIT);
    EXPECT_EQ(segs[0].offset, 2 * kCs);
    EXPECT_EQ(segs[0].bytes, kCs);
    EXPECT_EQ(stats().inflight_fetches, 1U);

    pos += segs[0].bytes;
    segs = plan(pos, len - pos, 1);
    ASSERT_EQ(segs.size(), 1U);
    EXPECT_EQ(segs[0].kind, IC_SEG_FETCH);
    EXPECT_EQ(segs[0].fetch_offset, 3 * kCs);
    EXPECT_EQ(segs[0].fetch_bytes, kCs);
    EXPECT_EQ(stats().inflight_fetches, 2U);
}

TEST_F(PlannerTest, MaxSegsOneWithManyFetches) {
    make(16 * kMiB);
    const auto segs = plan(0, 4 * kMiB, 1);
    ASSERT_EQ(segs.size(), 1U);
    EXPECT_EQ(segs[0].bytes, kMiB);
    EXPECT_EQ(stats().fetches, 1U);
    EXPECT_EQ(stats().miss_bytes, kMiB);
    EXPECT_EQ(stats().inflight_fetches, 1U);
}

TEST_F(PlannerTest, SerialModeOneClusterPerFetch) {
    make(16 * kMiB, kCs);
    EXPECT_EQ(core_->max_fetch_clusters(), 1U);
    const auto segs = plan(10, 4 * kCs - 20);
    ASSERT_EQ(segs.size(), 4U);
    expect_coverage(segs, 10, 4 * kCs - 20);
    for (size_t i = 0; i < segs.size(); i++) {
        EXPECT_EQ(segs[i].kind, IC_SEG_FETCH);
        EXPECT_EQ(segs[i].fetch_offset, i * kCs);
        EXPECT_EQ(segs[i].fetch_bytes, kCs);
    }
}

TEST_F(PlannerTest, MaxFetchRoundsDownToWholeClustersAtLeastOne) {
    make(16 * kMiB, 0);
    EXPECT_EQ(core_->max_fetch_clusters(), 1U);
    make(16 * kMiB, kCs - 1);
    EXPECT_EQ(core_->max_fetch_clusters(), 1U);
    make(16 * kMiB, 3 * kCs - 1);
    EXPECT_EQ(core_->max_fetch_clusters(), 2U);
    make(16 * kMiB, UINT64_MAX);
    EXPECT_EQ(core_->max_fetch_clusters(), IC_MAX_FETCH_LIMIT / kCs);
}

TEST_F(PlannerTest, EmptyAndOutOfRangeRequests) {
    make(4 * kCs);
    EXPECT_TRUE(plan(0, 0).empty());
    EXPECT_TRUE(plan(kCs, 0).empty());
    EXPECT_TRUE(plan(4 * kCs, 10).empty());
    EXPECT_EQ(stats().fetches, 0U);
    /* Past the end: clamped to the base (a contract violation, handled). */
    const auto segs = plan(3 * kCs, 2 * kCs);
    ASSERT_EQ(segs.size(), 1U);
    EXPECT_EQ(segs[0].bytes, kCs);
}

TEST_F(PlannerTest, AllHitIsOneSegmentAndDoesNotAllocate) {
    make(64 * kMiB);
    populate(0, 512); /* 32 MiB in 1 MiB fetches */
    std::vector<IcSegment> segs(4);
    const uint64_t before = unit::allocation_count();
    size_t n = 0;
    for (int i = 0; i < 100; i++) {
        n = core_->plan(7, 32 * kMiB - 14, segs);
    }
    EXPECT_EQ(unit::allocation_count(), before);
    /* The counter does count (so the check above can fail). */
    const auto probe = std::make_unique<int>(1);
    EXPECT_GT(unit::allocation_count(), before);
    ASSERT_EQ(n, 1U);
    EXPECT_EQ(segs[0].kind, IC_SEG_HIT);
    EXPECT_EQ(segs[0].offset, 7U);
    EXPECT_EQ(segs[0].bytes, 32 * kMiB - 14);
    EXPECT_EQ(segs[0].cache_offset, data(7));
}

TEST_F(PlannerTest, UnknownIdsAbort) {
    make(16 * kMiB);
    EXPECT_DEATH(core_->fetch_set_opaque(77, this),
                 "protocol error: ic_core_fetch_set_opaque\\(\\) of "
                 "unknown fetch 77");
    EXPECT_DEATH(core_->fetch_done(77, false), "unknown fetch 77");
    EXPECT_DEATH(core_->fetch_stored(77, true), "unknown fetch 77");
    EXPECT_DEATH(core_->fetch_dropped(77), "unknown fetch 77");
    EXPECT_DEATH(core_->store_admit(77), "unknown fetch 77");
    EXPECT_DEATH(core_->fetch_done(0, true), "unknown fetch 0");
    /* The parent's state is untouched by what the children did. */
    const IcStats st = stats();
    EXPECT_EQ(st.fetch_errors, 0U);
    EXPECT_EQ(st.cached_clusters, 0U);
}

TEST_F(PlannerTest, FetchDoneTwiceAborts) {
    make(16 * kMiB);
    const auto segs = plan(0, kCs);
    core_->fetch_done(segs[0].fetch, true);
    EXPECT_DEATH(core_->fetch_done(segs[0].fetch, true),
                 "ic_core_fetch_done\\(\\) of fetch 1, which is done, not "
                 "pending");
    EXPECT_DEATH(core_->fetch_done(segs[0].fetch, false), "not pending");
    EXPECT_EQ(stats().fetched_bytes, kCs);
    EXPECT_EQ(stats().fetch_errors, 0U);
    EXPECT_EQ(stats().inflight_fetches, 1U);
}

TEST_F(PlannerTest, StoringOrDroppingAPendingFetchAborts) {
    make(16 * kMiB);
    const auto segs = plan(0, kCs);
    EXPECT_DEATH(core_->fetch_stored(segs[0].fetch, true),
                 "ic_core_fetch_stored\\(\\) of fetch 1, which is pending");
    EXPECT_DEATH(core_->fetch_dropped(segs[0].fetch),
                 "ic_core_fetch_dropped\\(\\) of fetch 1, which is "
                 "pending");
    EXPECT_DEATH(core_->store_admit(segs[0].fetch),
                 "ic_core_store_admit\\(\\) of fetch 1, which is pending");
}

TEST_F(PlannerTest, HitsUseTheOneCacheOffsetMapping) {
    make(16 * kMiB + 1);
    populate(3, 2);
    const auto segs = plan(3 * kCs + 5, kCs);
    ASSERT_EQ(segs.size(), 1U);
    EXPECT_EQ(segs[0].cache_offset, core_->cache_offset(3 * kCs + 5));
    EXPECT_EQ(core_->cache_offset(0), geometry_.data_offset);
    EXPECT_EQ(core_->cache_offset(16 * kMiB + 1),
              geometry_.data_offset + 16 * kMiB + 1)
        << "the end of the base maps too";
    EXPECT_DEATH(core_->cache_offset(16 * kMiB + 2),
                 "ic_core_cache_offset\\(\\) of byte 16777218, beyond "
                 "the base of 16777217 bytes");
}

} // namespace
