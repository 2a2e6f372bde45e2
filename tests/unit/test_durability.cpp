/*
 * Unit tests: durability of the presence bitmap (DurabilityTracker, and the
 * sync protocol as seen through Core).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "ic_core.hpp"
#include "ic_durability.hpp"
#include "unit_helpers.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <memory>
#include <random>
#include <set>
#include <vector>

namespace {

using intellicache::Core;
using intellicache::DurabilityTracker;
using Run = DurabilityTracker::BlockRun;

constexpr uint64_t kBlockClusters = IC_META_BLOCK_CLUSTERS;

std::vector<std::pair<uint64_t, uint64_t>> runs_of(const DurabilityTracker &p) {
    std::vector<std::pair<uint64_t, uint64_t>> v;
    for (const Run &r : p.sync_runs()) {
        v.emplace_back(r.first, r.count);
    }
    return v;
}

using Runs = std::vector<std::pair<uint64_t, uint64_t>>;

TEST(DurabilityTracker, NothingToSync) {
    DurabilityTracker p;
    EXPECT_FALSE(p.sync_needed());
    EXPECT_FALSE(p.sync_begin());
    EXPECT_TRUE(p.sync_runs().empty());
    EXPECT_EQ(p.unsettled_clusters(), 0U);
}

TEST(DurabilityTrackerDeathTest, EndWithoutRunningSyncAborts) {
    DurabilityTracker p;
    EXPECT_DEATH(p.sync_end(true),
                 "protocol error: ic_core_sync_end\\(\\) without a running "
                 "sync");
    p.note_stored(1, 1);
    ASSERT_TRUE(p.sync_begin());
    p.sync_end(true);
    EXPECT_DEATH(p.sync_end(false), "without a running sync");
}

TEST(DurabilityTracker, SyncRunsAreSortedUniqueAndExact) {
    DurabilityTracker p;
    p.note_stored(5 * kBlockClusters + 3, 2);
    p.note_stored(10, 4);
    p.note_stored(kBlockClusters - 2, 4); /* straddles blocks 0 and 1 */
    p.note_stored(20, 1);
    p.note_stored(7 * kBlockClusters, 1);
    ASSERT_TRUE(p.sync_begin());
    /* Blocks 0, 1, 5 and 7: two runs of neighbours, one single block. */
    EXPECT_EQ(runs_of(p), (Runs{{0, 2}, {5, 1}, {7, 1}}));
    EXPECT_FALSE(p.sync_begin()) << "a sync is already running";
    p.sync_end(true);
    EXPECT_TRUE(p.sync_runs().empty());
}

TEST(DurabilityTracker, RunsAreSplitAtTheBatchSize) {
    DurabilityTracker p;
    /* Blocks 3 .. 3 + 2 * IC_META_BATCH + 4, all touched by one range,
     * then one more block right after a gap. */
    const uint64_t blocks = 2 * IC_META_BATCH + 5;
    p.note_stored(3 * kBlockClusters, blocks * kBlockClusters);
    p.note_stored((3 + blocks + 1) * kBlockClusters + 9, 1);
    ASSERT_TRUE(p.sync_begin());
    EXPECT_EQ(runs_of(p), (Runs{{3, IC_META_BATCH},
                                {3 + IC_META_BATCH, IC_META_BATCH},
                                {3 + 2 * IC_META_BATCH, 5},
                                {3 + blocks + 1, 1}}));
    p.sync_end(false);
    EXPECT_TRUE(p.sync_runs().empty()) << "no sync running: no runs";
    ASSERT_TRUE(p.sync_begin()) << "retried";
    EXPECT_EQ(runs_of(p).size(), 4U);
    p.sync_end(true);
}

TEST(DurabilityTracker, ExactlyOneBatchIsOneRun) {
    DurabilityTracker p;
    for (uint64_t b = 0; b < IC_META_BATCH; b++) {
        p.note_stored(b * kBlockClusters + b, 1); /* one cluster per block */
    }
    ASSERT_TRUE(p.sync_begin());
    EXPECT_EQ(runs_of(p), (Runs{{0, IC_META_BATCH}}));
    p.sync_end(true);
}

/*
 * Cleared clusters (eviction) make their blocks part of the next sync,
 * are settled only by a successful one, and exclude nothing.
 */
TEST(DurabilityTracker, ClearedBlocksAreSyncedAndSettled) {
    DurabilityTracker p;
    p.note_cleared(3 * kBlockClusters + 5, 2);
    EXPECT_TRUE(p.sync_needed());
    EXPECT_EQ(p.cleared_unsettled(), 2U);
    EXPECT_EQ(p.unsettled_clusters(), 0U) << "nothing stored";
    ASSERT_TRUE(p.sync_begin());
    EXPECT_EQ(runs_of(p), (Runs{{3, 1}}));
    p.note_cleared(7, 1);
    p.sync_end(false);
    EXPECT_EQ(p.cleared_unsettled(), 3U) << "a failed sync settles nothing";
    ASSERT_TRUE(p.sync_begin());
    EXPECT_EQ(runs_of(p), (Runs{{0, 1}, {3, 1}}));
    EXPECT_EQ(p.cleared_unsettled(), 3U) << "syncing is not settled";
    p.sync_end(true);
    EXPECT_EQ(p.cleared_unsettled(), 0U);
    EXPECT_FALSE(p.sync_needed());

    std::array<uint64_t, 2> words{~uint64_t{0}, ~uint64_t{0}};
    p.note_cleared(0, 128);
    p.exclude_pending(0, words);
    EXPECT_EQ(words[0], ~uint64_t{0}) << "a cleared range excludes nothing";
    EXPECT_EQ(words[1], ~uint64_t{0});
}

TEST(DurabilityTracker, ExcludesOnlyPending) {
    DurabilityTracker p;
    p.note_stored(3, 2);
    std::array<uint64_t, 2> words{~uint64_t{0}, ~uint64_t{0}};
    p.exclude_pending(0, words);
    EXPECT_EQ(words[0], ~uint64_t{0b11000});
    EXPECT_EQ(words[1], ~uint64_t{0});

    ASSERT_TRUE(p.sync_begin()); /* now syncing: no longer excluded */
    p.note_stored(70, 1);        /* stored during the sync: excluded */
    words = {~uint64_t{0}, ~uint64_t{0}};
    p.exclude_pending(0, words);
    EXPECT_EQ(words[0], ~uint64_t{0});
    EXPECT_EQ(words[1], ~uint64_t{1U << 6});
    /* Windows not containing pending clusters are untouched. */
    words = {~uint64_t{0}, ~uint64_t{0}};
    p.exclude_pending(128, words);
    EXPECT_EQ(words[0], ~uint64_t{0});
}

/* The sync protocol through the core, as the glue drives it. */
class SyncTest : public ::testing::Test {
protected:
    void SetUp() override {
        /* 4 KiB clusters, three metadata blocks. */
        ASSERT_TRUE(ic_geometry_init(&g_, (2 * kBlockClusters + 500) * 4096,
                                     4096, nullptr, 0));
        core_ = unit::make_core(g_, 7, 8 * 4096);
        ASSERT_NE(core_, nullptr);
    }

    void store(uint64_t cluster, uint64_t count = 1) {
        std::vector<IcSegment> segs(1);
        ASSERT_EQ(core_->plan(cluster * 4096, count * 4096, segs), 1U);
        ASSERT_EQ(segs[0].kind, IC_SEG_FETCH);
        core_->fetch_done(segs[0].fetch, true);
        core_->fetch_stored(segs[0].fetch, true);
    }

    /* What a reader would see on disk if block @index were written now. */
    bool on_disk(uint64_t cluster) const {
        const uint64_t index = cluster / kBlockClusters;
        std::array<uint8_t, IC_META_BLOCK_SIZE> b{};
        core_->encode_meta_block(index, b.data());
        auto reader = unit::make_core(g_, 7, 4096);
        EXPECT_EQ(reader->load_meta_block(index, b.data()), IC_META_OK);
        return reader->cluster_present(cluster);
    }

    /* The blocks of the running sync's runs, checking the runs' shape. */
    std::vector<uint64_t> sync_blocks() const {
        const size_t total = core_->sync_runs({});
        std::vector<IcMetaRun> runs(total + 2);
        EXPECT_EQ(core_->sync_runs(runs), total);
        runs.resize(total);
        std::vector<uint64_t> v;
        for (size_t i = 0; i < runs.size(); i++) {
            const IcMetaRun &r = runs[i];
            EXPECT_GE(r.count, 1U);
            EXPECT_LE(r.count, IC_META_BATCH);
            EXPECT_EQ(r.offset, g_.meta_offset + r.first * IC_META_BLOCK_SIZE);
            if (i > 0) {
                const IcMetaRun &prev = runs[i - 1];
                EXPECT_GE(r.first, prev.first + prev.count) << "block order";
                if (r.first == prev.first + prev.count) {
                    EXPECT_EQ(prev.count, IC_META_BATCH)
                        << "neighbouring blocks share a run up to the batch";
                }
            }
            for (uint64_t b = r.first; b < r.first + r.count; b++) {
                v.push_back(b);
            }
        }
        return v;
    }

    IcGeometry g_{};
    std::unique_ptr<Core> core_;
};

TEST_F(SyncTest, StoredButNotSyncedIsNotOnDisk) {
    store(10);
    EXPECT_TRUE(core_->cluster_present(10));
    EXPECT_TRUE(core_->sync_needed());
    EXPECT_FALSE(on_disk(10));
    const IcStats st = core_->stats();
    EXPECT_EQ(st.cached_clusters, 1U);
    EXPECT_EQ(st.durable_clusters, 0U);
}

TEST_F(SyncTest, SyncingClustersAreEncoded) {
    store(10);
    ASSERT_TRUE(core_->sync_begin());
    EXPECT_FALSE(core_->sync_needed());
    EXPECT_TRUE(on_disk(10));
    EXPECT_EQ(core_->stats().durable_clusters, 0U) << "not settled yet";
    core_->sync_end(true);
    EXPECT_TRUE(on_disk(10));
    EXPECT_EQ(core_->stats().durable_clusters, 1U);
    EXPECT_FALSE(core_->sync_needed());
    EXPECT_FALSE(core_->sync_begin()) << "nothing left to sync";
}

TEST_F(SyncTest, StoredDuringSyncWaitsForNextSync) {
    store(10);
    ASSERT_TRUE(core_->sync_begin());
    store(kBlockClusters + 1); /* data not covered by the running flush */
    EXPECT_TRUE(core_->sync_needed());
    EXPECT_FALSE(on_disk(kBlockClusters + 1));
    EXPECT_EQ(sync_blocks(), std::vector<uint64_t>{0});
    core_->sync_end(true);
    EXPECT_FALSE(on_disk(kBlockClusters + 1));
    EXPECT_EQ(core_->stats().durable_clusters, 1U);

    ASSERT_TRUE(core_->sync_begin());
    EXPECT_EQ(sync_blocks(), std::vector<uint64_t>{1});
    EXPECT_TRUE(on_disk(kBlockClusters + 1));
    core_->sync_end(true);
    EXPECT_EQ(core_->stats().durable_clusters, 2U);
}

TEST_F(SyncTest, FailedSyncIsRetried) {
    store(10);
    store(2 * kBlockClusters + 3);
    ASSERT_TRUE(core_->sync_begin());
    EXPECT_EQ(sync_blocks(), (std::vector<uint64_t>{0, 2}));
    core_->sync_end(false);
    EXPECT_TRUE(core_->sync_needed());
    EXPECT_FALSE(on_disk(10)) << "back to pending";
    EXPECT_EQ(core_->stats().durable_clusters, 0U);

    ASSERT_TRUE(core_->sync_begin());
    EXPECT_EQ(sync_blocks(), (std::vector<uint64_t>{0, 2}));
    core_->sync_end(true);
    EXPECT_TRUE(on_disk(10));
    EXPECT_TRUE(on_disk(2 * kBlockClusters + 3));
    EXPECT_EQ(core_->stats().durable_clusters, 2U);
}

TEST_F(SyncTest, SyncRunsListExactlyTouchedBlocks) {
    store(kBlockClusters - 4, 8); /* one fetch across blocks 0 and 1 */
    store(2 * kBlockClusters + 1);
    ASSERT_TRUE(core_->sync_begin());
    EXPECT_EQ(sync_blocks(), (std::vector<uint64_t>{0, 1, 2}));
    /* One run; a short array gets a prefix, the total is returned. */
    std::array<IcMetaRun, 1> one{};
    EXPECT_EQ(core_->sync_runs(one), 1U);
    EXPECT_EQ(one[0].first, 0U);
    EXPECT_EQ(one[0].count, 3U);
    EXPECT_EQ(one[0].offset, g_.meta_offset);
    core_->sync_end(true);
    EXPECT_EQ(core_->sync_runs({}), 0U);
}

TEST_F(SyncTest, SyncRunsIntoShortOrEmptyArrays) {
    store(5);
    store(2 * kBlockClusters);
    ASSERT_TRUE(core_->sync_begin());
    std::array<IcMetaRun, 4> runs{};
    runs.fill(IcMetaRun{77, 77, 77});
    EXPECT_EQ(core_->sync_runs(std::span(runs.data(), 0)), 2U);
    EXPECT_EQ(runs[0].first, 77U) << "max 0 writes nothing";
    EXPECT_EQ(core_->sync_runs(runs), 2U);
    EXPECT_EQ(runs[0].first, 0U);
    EXPECT_EQ(runs[0].count, 1U);
    EXPECT_EQ(runs[1].first, 2U);
    EXPECT_EQ(runs[1].offset, g_.meta_offset + 2 * IC_META_BLOCK_SIZE);
    EXPECT_EQ(runs[2].first, 77U);
    core_->sync_end(true);
}

TEST_F(SyncTest, NoSyncWhileInactive) {
    store(3);
    core_->set_active(false);
    EXPECT_TRUE(core_->sync_needed()) << "still waiting to be recorded";
    EXPECT_FALSE(core_->sync_begin()) << "an inactive node writes nothing";
    core_->set_active(true);
    ASSERT_TRUE(core_->sync_begin());
    core_->sync_end(true);
    EXPECT_EQ(core_->stats().durable_clusters, 1U);
}

TEST_F(SyncTest, SyncWhileStoppedStillRecordsWhatWasStored) {
    store(3);
    EXPECT_TRUE(core_->cache_failed(true));
    ASSERT_TRUE(core_->sync_begin()) << "metadata space is preallocated";
    core_->sync_end(true);
    EXPECT_TRUE(on_disk(3));
}

TEST_F(SyncTest, EndWithoutBeginAborts) {
    store(1);
    EXPECT_DEATH(core_->sync_end(true), "without a running sync");
    EXPECT_TRUE(core_->sync_needed());
}

TEST_F(SyncTest, DeactivatingDuringASyncAborts) {
    store(1);
    ASSERT_TRUE(core_->sync_begin());
    EXPECT_DEATH(core_->set_active(false),
                 "deactivating while a metadata sync runs");
    core_->sync_end(true);
    core_->set_active(false);
    EXPECT_EQ(core_->cache_state(), IC_CACHE_INACTIVE);
}

TEST_F(SyncTest, RandomStoresAndSyncsKeepDurableViewSafe) {
    /* Model: each cluster is absent, pending, syncing or durable. */
    enum { kAbsent, kPending, kSyncing, kDurable };
    std::mt19937_64 rng(7);
    std::vector<int> model(g_.cluster_count, kAbsent);
    uint64_t pending = 0;
    uint64_t durable = 0;
    bool running = false;
    for (int step = 0; step < 3000 && !HasFailure(); step++) {
        const uint64_t r = rng() % 10;
        if (r < 6) {
            const uint64_t c = rng() % g_.cluster_count;
            if (model[c] == kAbsent) {
                store(c);
                model[c] = kPending;
                pending++;
            }
        } else if (r < 8 && !running) {
            const bool any = pending > 0;
            ASSERT_EQ(core_->sync_begin(), any);
            if (any) {
                std::set<uint64_t> expect;
                for (uint64_t c = 0; c < model.size(); c++) {
                    if (model[c] == kPending) {
                        model[c] = kSyncing;
                        expect.insert(c / kBlockClusters);
                        pending--;
                    }
                }
                const auto got = sync_blocks();
                ASSERT_EQ(std::vector<uint64_t>(expect.begin(), expect.end()),
                          got);
                running = true;
            }
        } else if (running) {
            const bool ok = rng() % 3 != 0;
            core_->sync_end(ok);
            for (int &s : model) {
                if (s == kSyncing) {
                    s = ok ? kDurable : kPending;
                    (ok ? durable : pending)++;
                }
            }
            running = false;
        }
        /* Check every block's durable view against the model. */
        if (step % 100 == 0) {
            for (uint64_t i = 0; i < g_.meta_blocks; i++) {
                std::array<uint8_t, IC_META_BLOCK_SIZE> b{};
                core_->encode_meta_block(i, b.data());
                auto reader = unit::make_core(g_, 7, 4096);
                ASSERT_EQ(reader->load_meta_block(i, b.data()), IC_META_OK);
                for (uint64_t c = i * kBlockClusters;
                     c < std::min(g_.cluster_count, (i + 1) * kBlockClusters);
                     c++) {
                    const bool visible =
                        model[c] == kSyncing || model[c] == kDurable;
                    ASSERT_EQ(reader->cluster_present(c), visible) << c;
                }
            }
        }
        ASSERT_EQ(core_->stats().durable_clusters, durable);
        ASSERT_EQ(core_->sync_needed(), pending > 0);
    }
}

} // namespace
