/*
 * Unit tests: fetch buffers kept for reuse (BufferPool, ic_core_buf_take,
 * ic_core_buf_give, ic_core_buf_reclaim).
 *
 * The pool only holds pointers, so the tests use addresses of a static
 * array: they are never dereferenced.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "ic_buffer_pool.hpp"
#include "ic_core.hpp"
#include "unit_helpers.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <vector>

namespace {

using intellicache::BufferPool;
using intellicache::Core;
using unit::kMiB;

char g_bufs[64];
void *buf(int i) {
    return &g_bufs[i];
}

/* Empties @pool as the glue must before destroying it. */
std::set<void *> drain(BufferPool &pool) {
    std::set<void *> out;
    while (void *b = pool.reclaim(true)) {
        EXPECT_TRUE(out.insert(b).second) << "returned twice";
    }
    return out;
}

TEST(BufferPool, KeepsOnlyTheCurrentSize) {
    BufferPool pool(kMiB);
    EXPECT_EQ(pool.take(kMiB), nullptr) << "empty";
    EXPECT_FALSE(pool.give(buf(0), kMiB - 4096)) << "smaller: malloc's";
    EXPECT_FALSE(pool.give(buf(0), 2 * kMiB));
    EXPECT_FALSE(pool.give(nullptr, kMiB));
    EXPECT_TRUE(pool.give(buf(1), kMiB));
    EXPECT_EQ(pool.count(), 1U);
    EXPECT_EQ(pool.take(kMiB - 4096), nullptr) << "only the pooled size";
    EXPECT_EQ(pool.take(kMiB), buf(1));
    EXPECT_EQ(pool.take(kMiB), nullptr);
    EXPECT_EQ(pool.count(), 0U);
}

TEST(BufferPool, AtMostPoolSizeBuffers) {
    BufferPool pool(kMiB);
    for (unsigned i = 0; i < IC_BUF_POOL_SIZE; i++) {
        EXPECT_TRUE(pool.give(buf(static_cast<int>(i)), kMiB)) << i;
    }
    EXPECT_FALSE(pool.give(buf(IC_BUF_POOL_SIZE), kMiB)) << "full";
    std::set<void *> taken;
    while (void *b = pool.take(kMiB)) {
        taken.insert(b);
    }
    EXPECT_EQ(taken.size(), size_t{IC_BUF_POOL_SIZE});
    EXPECT_EQ(taken.count(buf(IC_BUF_POOL_SIZE)), 0U);
}

TEST(BufferPool, ReclaimOnlyWhileIdle) {
    BufferPool pool(kMiB);
    ASSERT_TRUE(pool.give(buf(0), kMiB));
    ASSERT_TRUE(pool.give(buf(1), kMiB));
    EXPECT_EQ(pool.reclaim(false), nullptr) << "busy: kept for the next fetch";
    EXPECT_EQ(pool.count(), 2U);
    EXPECT_EQ(drain(pool), (std::set<void *>{buf(0), buf(1)}));
    EXPECT_EQ(pool.reclaim(true), nullptr);
}

TEST(BufferPool, OldSizeIsReclaimableAtOnce) {
    BufferPool pool(kMiB);
    ASSERT_TRUE(pool.give(buf(0), kMiB));
    ASSERT_TRUE(pool.give(buf(1), kMiB));
    pool.set_size(2 * kMiB);
    EXPECT_EQ(pool.take(kMiB), nullptr) << "the old size is not handed out";
    EXPECT_EQ(pool.take(2 * kMiB), nullptr);
    EXPECT_FALSE(pool.give(buf(2), kMiB)) << "nor kept";
    ASSERT_TRUE(pool.give(buf(3), 2 * kMiB));
    /* Busy: only the buffers of the old size come back. */
    std::set<void *> old;
    while (void *b = pool.reclaim(false)) {
        old.insert(b);
    }
    EXPECT_EQ(old, (std::set<void *>{buf(0), buf(1)}));
    EXPECT_EQ(pool.count(), 1U);
    EXPECT_EQ(pool.take(2 * kMiB), buf(3));
}

TEST(BufferPool, SizeBackAgainMakesOldBuffersCurrent) {
    BufferPool pool(kMiB);
    ASSERT_TRUE(pool.give(buf(0), kMiB));
    pool.set_size(2 * kMiB);
    pool.set_size(kMiB);
    EXPECT_EQ(pool.reclaim(false), nullptr) << "current again: kept";
    EXPECT_EQ(pool.take(kMiB), buf(0));
}

TEST(BufferPool, GivingAPooledBufferAgainAborts) {
    BufferPool pool(kMiB);
    ASSERT_TRUE(pool.give(buf(5), kMiB));
    EXPECT_DEATH(pool.give(buf(5), kMiB), "protocol error: ic_core_buf_give");
    drain(pool);
}

TEST(BufferPool, DestroyedWithBuffersAborts) {
    EXPECT_DEATH(
        {
            BufferPool pool(kMiB);
            pool.give(buf(0), kMiB);
            pool.give(buf(1), kMiB);
        },
        "2 pooled fetch buffer\\(s\\) left");
}

/* ---- Through the core: idle means no fetch at all, nothing queued ---- */

constexpr uint64_t kCs = 64 * 1024;

class CorePoolTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(ic_geometry_init(&g_, 64 * kMiB, kCs, nullptr, 0));
        core_ = unit::make_core(g_, 1, kMiB);
        ASSERT_NE(core_, nullptr);
    }
    void TearDown() override {
        if (core_) {
            while (core_->buf_reclaim() != nullptr) {
            }
        }
    }

    IcFetchId plan_fetch(uint64_t offset) {
        std::vector<IcSegment> segs(1);
        EXPECT_EQ(core_->plan(offset, kMiB, segs), 1U);
        EXPECT_EQ(segs[0].kind, IC_SEG_FETCH);
        return segs[0].fetch;
    }

    IcGeometry g_{};
    std::unique_ptr<Core> core_;
};

TEST_F(CorePoolTest, PoolsMaxFetchBuffers) {
    EXPECT_TRUE(core_->buf_give(buf(0), kMiB));
    EXPECT_FALSE(core_->buf_give(buf(1), kCs));
    EXPECT_EQ(core_->buf_take(kMiB), buf(0));
}

TEST_F(CorePoolTest, MaxFetchOfTheCoreIsRoundedToClusters) {
    core_ = unit::make_core(g_, 1, kMiB + 100);
    EXPECT_TRUE(core_->buf_give(buf(0), kMiB)) << "a whole-cluster fetch";
    EXPECT_FALSE(core_->buf_give(buf(1), kMiB + 100));
}

TEST_F(CorePoolTest, ReclaimWaitsForEveryFetchToBeForgotten) {
    ASSERT_TRUE(core_->buf_give(buf(0), kMiB));
    const IcFetchId a = plan_fetch(0);
    EXPECT_EQ(core_->buf_reclaim(), nullptr) << "a fetch is pending";
    core_->fetch_done(a, true);
    EXPECT_EQ(core_->buf_reclaim(), nullptr) << "its data is not stored";
    ASSERT_TRUE(core_->store_admit(a));
    EXPECT_EQ(core_->buf_reclaim(), nullptr) << "queued to store";
    ASSERT_TRUE(core_->store_writer_start());
    IcStoreJob job{};
    ASSERT_TRUE(core_->store_next(job));
    EXPECT_EQ(core_->buf_reclaim(), nullptr) << "being written";
    core_->fetch_stored(a, true);
    EXPECT_EQ(core_->buf_reclaim(), buf(0)) << "idle";
    EXPECT_EQ(core_->buf_reclaim(), nullptr);
    EXPECT_FALSE(core_->store_next(job));
}

TEST_F(CorePoolTest, ApplySettingsMakesOldBuffersReclaimable) {
    ASSERT_TRUE(core_->buf_give(buf(0), kMiB));
    ASSERT_TRUE(core_->buf_give(buf(1), kMiB));
    const IcFetchId a = plan_fetch(0); /* busy from now on */
    IcSettings set{};
    set.cluster_size = kCs;
    set.max_inflight = IC_DEFAULT_MAX_INFLIGHT;
    set.max_fetch = 2 * kMiB;
    set.read_ahead = 4 * kMiB;
    core_->apply_settings(set);
    EXPECT_EQ(core_->buf_take(kMiB), nullptr);
    std::set<void *> old;
    while (void *b = core_->buf_reclaim()) {
        old.insert(b);
    }
    EXPECT_EQ(old, (std::set<void *>{buf(0), buf(1)})) << "at once, busy";
    EXPECT_TRUE(core_->buf_give(buf(2), 2 * kMiB));
    EXPECT_EQ(core_->buf_reclaim(), nullptr) << "current size, busy: kept";
    /* The fetch in flight keeps its 1 MiB size; new plans use 2 MiB. */
    const IcFetchId b = plan_fetch(4 * kMiB);
    std::vector<IcSegment> segs(1);
    ASSERT_EQ(core_->plan(8 * kMiB, 4 * kMiB, segs), 1U);
    EXPECT_EQ(segs[0].fetch_bytes, 2 * kMiB);
    for (const IcFetchId id : {a, b, segs[0].fetch}) {
        core_->fetch_done(id, false);
    }
    EXPECT_EQ(core_->buf_reclaim(), buf(2));
}

TEST(CorePoolDeathTest, FreeingTheCoreWithBuffersAborts) {
    IcGeometry g;
    ASSERT_TRUE(ic_geometry_init(&g, 64 * kMiB, kCs, nullptr, 0));
    auto core = unit::make_core(g, 1, kMiB);
    ASSERT_TRUE(core->buf_give(buf(0), kMiB));
    EXPECT_DEATH(core.reset(), "pooled fetch buffer\\(s\\) left");
    EXPECT_EQ(core->buf_reclaim(), buf(0));
}

} // namespace
