/*
 * Unit tests: always-on protocol checks (IC_CHECK), and that each misuse
 * of the C API listed in ic_capi.cpp aborts with its message.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "ic_check.hpp"

#include <gtest/gtest.h>

namespace {

constexpr uint32_t kCs = 65536;

TEST(CheckDeathTest, FailedCheckPrintsMessageConditionAndPlace) {
    EXPECT_DEATH(IC_CHECK(1 + 1 == 3, "arithmetic is %s", "broken"),
                 "^intellicache: protocol error: arithmetic is broken "
                 "\\[test_check.cpp:[0-9]+: 1 \\+ 1 == 3\\]");
}

TEST(Check, PassingCheckDoesNothing) {
    int evaluated = 0;
    IC_CHECK(++evaluated == 1, "never printed");
    EXPECT_EQ(evaluated, 1) << "the condition is evaluated exactly once";
}

#ifdef NDEBUG
TEST(Check, StaysInReleaseBuilds) {
    EXPECT_DEATH(IC_CHECK(false, "still checked"), "still checked");
}
#endif

class ProtocolDeathTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(ic_geometry_init(&g_, 64 << 20, kCs, nullptr, 0));
        core_ = ic_core_new(&g_, 1, 1 << 20, 4, nullptr, 0);
        ASSERT_NE(core_, nullptr);
    }
    void TearDown() override {
        while (ic_core_buf_reclaim(core_) != nullptr) {
        }
        ic_core_free(core_);
    }

    IcFetchId fetch(uint64_t offset) {
        IcSegment seg;
        EXPECT_EQ(ic_core_plan(core_, offset, 1, &seg, 1), 1U);
        return seg.fetch;
    }

    IcGeometry g_{};
    IcCore *core_ = nullptr;
};

TEST_F(ProtocolDeathTest, UnknownFetchIds) {
    EXPECT_DEATH(ic_core_fetch_set_opaque(core_, 5, nullptr),
                 "ic_core_fetch_set_opaque\\(\\) of unknown fetch 5");
    EXPECT_DEATH(ic_core_fetch_done(core_, 5, true), "unknown fetch 5");
    EXPECT_DEATH(ic_core_fetch_stored(core_, 5, true), "unknown fetch 5");
    EXPECT_DEATH(ic_core_fetch_dropped(core_, 5), "unknown fetch 5");
    EXPECT_DEATH(ic_core_store_admit(core_, 5), "unknown fetch 5");
}

TEST_F(ProtocolDeathTest, FetchInTheWrongState) {
    const IcFetchId id = fetch(0);
    EXPECT_DEATH(ic_core_fetch_stored(core_, id, true), "which is pending");
    EXPECT_DEATH(ic_core_fetch_dropped(core_, id), "which is pending");
    EXPECT_DEATH(ic_core_store_admit(core_, id), "which is pending");
    ic_core_fetch_done(core_, id, true);
    EXPECT_DEATH(ic_core_fetch_done(core_, id, true),
                 "which is done, not pending");
    ASSERT_TRUE(ic_core_store_admit(core_, id));
    EXPECT_DEATH(ic_core_fetch_stored(core_, id, true), "which is queued");
    ASSERT_TRUE(ic_core_store_writer_start(core_));
    IcStoreJob job;
    ASSERT_TRUE(ic_core_store_next(core_, &job));
    ic_core_fetch_stored(core_, id, true);
    EXPECT_FALSE(ic_core_store_next(core_, &job));
}

TEST_F(ProtocolDeathTest, PipelineCallsOutOfOrder) {
    IcStoreJob job;
    EXPECT_DEATH(ic_core_store_next(core_, &job), "without a writer");
    EXPECT_DEATH(ic_core_slot_put(core_), "without a slot taken");
    EXPECT_DEATH(ic_core_sync_end(core_, true), "without a running sync");
}

TEST_F(ProtocolDeathTest, DeactivatingBusy) {
    const IcFetchId id = fetch(0);
    ic_core_fetch_done(core_, id, true);
    ASSERT_TRUE(ic_core_store_admit(core_, id));
    EXPECT_DEATH(ic_core_set_active(core_, false), "drain first");
    ASSERT_TRUE(ic_core_store_writer_start(core_));
    IcStoreJob job;
    ASSERT_TRUE(ic_core_store_next(core_, &job));
    ic_core_fetch_stored(core_, id, true);
    EXPECT_FALSE(ic_core_store_next(core_, &job));
    ASSERT_TRUE(ic_core_sync_begin(core_));
    EXPECT_DEATH(ic_core_set_active(core_, false), "sync runs");
    ic_core_sync_end(core_, true);
    ic_core_set_active(core_, false);
}

TEST_F(ProtocolDeathTest, SettingsThatResolveNeverGives) {
    IcSettings good{};
    good.cluster_size = kCs;
    good.max_inflight = 4;
    good.max_fetch = 1 << 20;
    ic_core_apply_settings(core_, &good);
    IcSettings bad = good;
    bad.cluster_size = 4096;
    EXPECT_DEATH(ic_core_apply_settings(core_, &bad),
                 "for cluster size 4096 on a cache of cluster size 65536");
    bad = good;
    bad.max_inflight = 0;
    EXPECT_DEATH(ic_core_apply_settings(core_, &bad), "max-inflight 0");
    bad = good;
    bad.max_fetch = kCs + 1;
    EXPECT_DEATH(ic_core_apply_settings(core_, &bad), "max-fetch 65537");
    bad.max_fetch = 0;
    EXPECT_DEATH(ic_core_apply_settings(core_, &bad), "max-fetch 0");
    bad = good;
    bad.read_ahead = IC_MAX_READ_AHEAD + 1ULL;
    EXPECT_DEATH(ic_core_apply_settings(core_, &bad), "read-ahead");
}

TEST_F(ProtocolDeathTest, CacheOffsetBeyondTheBase) {
    EXPECT_EQ(ic_core_cache_offset(core_, g_.base_size),
              g_.data_offset + g_.base_size);
    EXPECT_DEATH(ic_core_cache_offset(core_, g_.base_size + 1),
                 "beyond the base");
}

TEST_F(ProtocolDeathTest, BufferGivenTwice) {
    static char b[1];
    ASSERT_TRUE(ic_core_buf_give(core_, b, 1 << 20));
    EXPECT_DEATH(ic_core_buf_give(core_, b, 1 << 20), "pooled already");
}

} // namespace
