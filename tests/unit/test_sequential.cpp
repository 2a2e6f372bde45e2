/*
 * Unit tests: sequential stream detection and read-ahead planning.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "ic_core.hpp"
#include "ic_sequential.hpp"
#include "unit_helpers.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace {

using intellicache::Core;
using intellicache::SequentialDetector;
using unit::kMiB;

constexpr uint64_t kWindow = 2 * kMiB;
constexpr uint64_t kBase = 64 * kMiB;

TEST(SequentialDetector, TriggersAfterTwoContinuations) {
    SequentialDetector d(kWindow, kBase);
    EXPECT_FALSE(d.note_read(0, kMiB));
    EXPECT_FALSE(d.note_read(kMiB, kMiB));
    const auto ra = d.note_read(2 * kMiB, kMiB);
    ASSERT_TRUE(ra);
    EXPECT_EQ(ra->offset, 3 * kMiB);
    EXPECT_EQ(ra->bytes, kWindow);
}

TEST(SequentialDetector, RandomReadsNeverTrigger) {
    SequentialDetector d(kWindow, kBase);
    for (uint64_t i = 0; i < 100; i++) {
        EXPECT_FALSE(d.note_read((i * 7919 % 1000) * 65536, 4096));
    }
}

TEST(SequentialDetector, OnlyNewPartsOfTheWindowInLargePieces) {
    SequentialDetector d(kWindow, kBase);
    d.note_read(0, kMiB);
    d.note_read(kMiB, kMiB);
    ASSERT_TRUE(d.note_read(2 * kMiB, kMiB)); /* [3M, 5M) */
    /* Next read ends at 4M: window [4M, 6M), 1M new = half: issued. */
    const auto ra = d.note_read(3 * kMiB, kMiB);
    ASSERT_TRUE(ra);
    EXPECT_EQ(ra->offset, 5 * kMiB);
    EXPECT_EQ(ra->bytes, kMiB);
    /* Small reads: less than half a window new, nothing yet. */
    EXPECT_FALSE(d.note_read(4 * kMiB, 4096));
    EXPECT_FALSE(d.note_read(4 * kMiB + 4096, 4096));
}

TEST(SequentialDetector, InterleavedStreamsAreFollowed) {
    SequentialDetector d(kWindow, kBase);
    const uint64_t a = 0;
    const uint64_t b = 32 * kMiB;
    int triggered = 0;
    for (uint64_t i = 0; i < 4; i++) {
        triggered += d.note_read(a + i * kMiB, kMiB) ? 1 : 0;
        triggered += d.note_read(b + i * kMiB, kMiB) ? 1 : 0;
    }
    EXPECT_EQ(triggered, 4); /* reads 3 and 4 of each stream */
}

TEST(SequentialDetector, StopsAtTheEndOfTheBase) {
    SequentialDetector d(kWindow, 4 * kMiB);
    d.note_read(0, kMiB);
    d.note_read(kMiB, kMiB);
    const auto ra = d.note_read(2 * kMiB, kMiB);
    ASSERT_TRUE(ra);
    EXPECT_EQ(ra->offset, 3 * kMiB);
    EXPECT_EQ(ra->bytes, kMiB); /* clamped to the base */
    EXPECT_FALSE(d.note_read(3 * kMiB, kMiB));
}

TEST(SequentialDetector, DisabledWithZeroWindow) {
    SequentialDetector d(0, kBase);
    for (uint64_t i = 0; i < 10; i++) {
        EXPECT_FALSE(d.note_read(i * kMiB, kMiB));
    }
}

class ReadAheadTest : public ::testing::Test {
protected:
    void SetUp() override {
        char why[128];
        ASSERT_TRUE(
            ic_geometry_init(&geometry_, kBase, 65536, why, sizeof(why)));
        core_ = unit::make_core(geometry_, 1, kMiB);
        ASSERT_NE(core_, nullptr);
    }

    IcGeometry geometry_{};
    std::unique_ptr<Core> core_;
};

TEST_F(ReadAheadTest, PlansFetchesWithoutCountingUserReads) {
    IcSegment seg{};
    ASSERT_EQ(core_->plan_read_ahead(0, 3 * kMiB, seg), 1U);
    EXPECT_EQ(seg.kind, IC_SEG_FETCH);
    EXPECT_EQ(seg.bytes, kMiB); /* one segment, bounded by max-fetch */
    const IcStats st = core_->stats();
    EXPECT_EQ(st.readahead_bytes, kMiB);
    EXPECT_EQ(st.fetches, 1U);
    EXPECT_EQ(st.miss_bytes, 0U);

    /* A user read of that range joins the read-ahead fetch. */
    IcSegment user[4];
    ASSERT_EQ(core_->plan(4096, 4096, user), 1U);
    EXPECT_EQ(user[0].kind, IC_SEG_WAIT);
    EXPECT_EQ(user[0].fetch, seg.fetch);

    /* Read-ahead over it again is a WAIT: nothing new to fetch. */
    IcSegment again{};
    ASSERT_EQ(core_->plan_read_ahead(0, kMiB, again), 1U);
    EXPECT_EQ(again.kind, IC_SEG_WAIT);
    EXPECT_EQ(core_->stats().readahead_bytes, kMiB);
}

TEST_F(ReadAheadTest, PrefetchPlansLikeReadAheadButCountsApart) {
    IcSegment seg{};
    ASSERT_EQ(core_->plan_prefetch(0, 3 * kMiB, seg), 1U);
    EXPECT_EQ(seg.kind, IC_SEG_FETCH);
    EXPECT_EQ(seg.bytes, kMiB);
    IcStats st = core_->stats();
    EXPECT_EQ(st.prefetch_bytes, kMiB);
    EXPECT_EQ(st.readahead_bytes, 0U);
    EXPECT_EQ(st.fetches, 1U);

    /* In flight: planned again, it is a WAIT and counts nothing. */
    IcSegment again{};
    ASSERT_EQ(core_->plan_prefetch(0, kMiB, again), 1U);
    EXPECT_EQ(again.kind, IC_SEG_WAIT);
    EXPECT_EQ(core_->stats().prefetch_bytes, kMiB);

    /* Stored: a HIT, skipped by the prefetch. */
    core_->fetch_done(seg.fetch, true);
    core_->fetch_stored(seg.fetch, true);
    ASSERT_EQ(core_->plan_prefetch(0, 3 * kMiB, again), 1U);
    EXPECT_EQ(again.kind, IC_SEG_HIT);
    EXPECT_EQ(again.bytes, kMiB);
}

/*
 * Deferred stores fetch again what guests read: hits on them are not the
 * first pass over data loaded ahead of a reader, as a prefetch's are.
 */
TEST_F(ReadAheadTest, ARefillIsNotDataLoadedAhead) {
    IcSegment pre{};
    IcSegment refill{};
    ASSERT_EQ(core_->plan_prefetch(0, kMiB, pre), 1U);
    ASSERT_EQ(core_->plan_refill(kMiB, kMiB, refill), 1U);
    ASSERT_EQ(refill.kind, IC_SEG_FETCH);
    EXPECT_EQ(core_->stats().prefetch_bytes, 2 * kMiB);
    for (const IcSegment *seg : {&pre, &refill}) {
        core_->fetch_done(seg->fetch, true);
        core_->fetch_stored(seg->fetch, true);
    }

    IcSegment hit[4];
    ASSERT_EQ(core_->plan(kMiB, 4096, hit), 1U);
    EXPECT_EQ(hit[0].kind, IC_SEG_HIT);
    EXPECT_EQ(core_->stats().hit_ahead_bytes, 0U);
    ASSERT_EQ(core_->plan(0, 4096, hit), 1U);
    EXPECT_EQ(hit[0].kind, IC_SEG_HIT);
    EXPECT_EQ(core_->stats().hit_ahead_bytes, 4096U);
}

TEST_F(ReadAheadTest, NothingIsPrefetchedUnlessCaching) {
    core_->cache_failed(true);
    IcSegment seg{};
    EXPECT_EQ(core_->plan_prefetch(0, kMiB, seg), 0U);
    EXPECT_EQ(core_->stats().prefetch_bytes, 0U);
    IcCore *core =
        ic_core_new(&geometry_, 1, kMiB, IC_DEFAULT_MAX_INFLIGHT, nullptr, 0);
    ASSERT_NE(core, nullptr);
    ASSERT_EQ(ic_core_plan_prefetch(core, 0, kMiB, &seg), 1U);
    EXPECT_EQ(seg.kind, IC_SEG_FETCH);
    ic_core_fetch_done(core, seg.fetch, false);
    ic_core_set_active(core, false);
    EXPECT_EQ(ic_core_plan_prefetch(core, kMiB, kMiB, &seg), 0U);
    ic_core_free(core);
}

TEST_F(ReadAheadTest, CApiNotesReadsAfterEnabling) {
    uint64_t off = 0;
    uint64_t len = 0;
    IcCore *core =
        ic_core_new(&geometry_, 1, kMiB, IC_DEFAULT_MAX_INFLIGHT, nullptr, 0);
    ASSERT_NE(core, nullptr);
    for (uint64_t i = 0; i < 3; i++) {
        EXPECT_FALSE(ic_core_note_read(core, i * kMiB, kMiB, &off, &len));
    }
    ic_core_set_read_ahead(core, kWindow);
    EXPECT_FALSE(ic_core_note_read(core, 0, kMiB, &off, &len));
    EXPECT_FALSE(ic_core_note_read(core, kMiB, kMiB, &off, &len));
    EXPECT_TRUE(ic_core_note_read(core, 2 * kMiB, kMiB, &off, &len));
    EXPECT_EQ(off, 3 * kMiB);
    EXPECT_EQ(len, kWindow);
    IcSegment seg{};
    EXPECT_EQ(ic_core_plan_read_ahead(core, off, len, &seg), 1U);
    EXPECT_EQ(seg.kind, IC_SEG_FETCH);
    ic_core_free(core);
}

TEST_F(ReadAheadTest, NothingIsReadAheadUnlessCaching) {
    core_->set_read_ahead(kWindow);
    core_->cache_failed(true); /* STOPPED: fetched data cannot be stored */
    for (uint64_t i = 0; i < 4; i++) {
        EXPECT_FALSE(core_->note_read(i * kMiB, kMiB)) << i;
    }
    IcSegment seg{};
    EXPECT_EQ(core_->plan_read_ahead(0, kMiB, seg), 0U);
    EXPECT_EQ(core_->stats().inflight_fetches, 0U);
    EXPECT_EQ(core_->stats().readahead_bytes, 0U);
}

TEST_F(ReadAheadTest, InactiveStopsReadAheadUntilActiveAgain) {
    core_->set_read_ahead(kWindow);
    core_->set_active(false);
    for (uint64_t i = 0; i < 4; i++) {
        EXPECT_FALSE(core_->note_read(i * kMiB, kMiB)) << i;
    }
    IcSegment seg{};
    EXPECT_EQ(core_->plan_read_ahead(0, kMiB, seg), 0U);
    core_->set_active(true);
    /* The stream is followed afresh: two continuing reads, then ahead. */
    EXPECT_FALSE(core_->note_read(4 * kMiB, kMiB));
    EXPECT_FALSE(core_->note_read(5 * kMiB, kMiB));
    const auto ra = core_->note_read(6 * kMiB, kMiB);
    ASSERT_TRUE(ra);
    EXPECT_EQ(ra->offset, 7 * kMiB);
    ASSERT_EQ(core_->plan_read_ahead(ra->offset, ra->bytes, seg), 1U);
    EXPECT_EQ(seg.kind, IC_SEG_FETCH);
}

TEST_F(ReadAheadTest, BypassedReadsNothingAhead) {
    core_->set_read_ahead(kWindow);
    core_->cache_failed(false);
    core_->note_read(0, kMiB);
    core_->note_read(kMiB, kMiB);
    EXPECT_FALSE(core_->note_read(2 * kMiB, kMiB));
}

TEST_F(ReadAheadTest, ApplySettingsChangesTheWindowAndKeepsStreams) {
    core_->set_read_ahead(kWindow);
    EXPECT_FALSE(core_->note_read(0, kMiB));
    EXPECT_FALSE(core_->note_read(kMiB, kMiB));
    IcSettings set{};
    set.cluster_size = 65536;
    set.max_inflight = IC_DEFAULT_MAX_INFLIGHT;
    set.max_fetch = kMiB;
    set.read_ahead = 8 * kMiB;
    core_->apply_settings(set);
    /* The stream continues: this read asks for the new window at once. */
    const auto ra = core_->note_read(2 * kMiB, kMiB);
    ASSERT_TRUE(ra);
    EXPECT_EQ(ra->offset, 3 * kMiB);
    EXPECT_EQ(ra->bytes, 8 * kMiB);
    set.read_ahead = 0;
    core_->apply_settings(set);
    EXPECT_FALSE(core_->note_read(3 * kMiB, kMiB)) << "0 disables";
}

} // namespace
