/*
 * Unit tests: the store pipeline (StoreQueue, and ic_core_store_admit,
 * ic_core_store_writer_start, ic_core_store_next as the core drives it).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "ic_core.hpp"
#include "ic_store_queue.hpp"
#include "unit_helpers.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace {

using intellicache::Core;
using intellicache::StoreQueue;
using unit::kMiB;

/* ---- StoreQueue alone ---- */

TEST(StoreQueue, FifoAndBacklog) {
    StoreQueue q;
    EXPECT_FALSE(q.pop());
    q.push(7, 100);
    q.push(3, 200);
    q.push(9, 300);
    EXPECT_EQ(q.backlog(), 600U);
    EXPECT_EQ(q.jobs(), 3U);
    EXPECT_EQ(q.pop(), 7U);
    EXPECT_EQ(q.backlog(), 600U) << "taken by a writer, still held";
    EXPECT_EQ(q.pop(), 3U);
    q.release(100);
    EXPECT_EQ(q.backlog(), 500U);
    EXPECT_EQ(q.jobs(), 2U);
    EXPECT_EQ(q.pop(), 9U);
    EXPECT_FALSE(q.pop());
    q.release(200);
    q.release(300);
    EXPECT_EQ(q.backlog(), 0U);
    EXPECT_EQ(q.jobs(), 0U);
}

TEST(StoreQueue, BacklogLimitIsInclusive) {
    StoreQueue q;
    EXPECT_TRUE(q.fits(IC_STORE_BACKLOG_LIMIT));
    EXPECT_FALSE(q.fits(IC_STORE_BACKLOG_LIMIT + 1));
    q.push(1, IC_STORE_BACKLOG_LIMIT - 10);
    EXPECT_TRUE(q.fits(10));
    EXPECT_FALSE(q.fits(11));
    EXPECT_DEATH(q.push(2, 11), "store backlog overflow");
}

TEST(StoreQueue, WritersStartOnlyForQueuedWorkUpToTheLimit) {
    StoreQueue q;
    EXPECT_FALSE(q.writer_start()) << "nothing queued";
    for (IcFetchId id = 1; id <= 10; id++) {
        q.push(id, 1);
    }
    for (unsigned i = 0; i < IC_STORE_WRITERS; i++) {
        EXPECT_TRUE(q.writer_start()) << i;
    }
    EXPECT_FALSE(q.writer_start()) << "IC_STORE_WRITERS running";
    EXPECT_EQ(q.writers(), IC_STORE_WRITERS);
    q.writer_stop();
    EXPECT_TRUE(q.writer_start());
}

TEST(StoreQueue, OneWriterPerJobNoWriterWillTake) {
    StoreQueue q;
    q.push(1, 10);
    EXPECT_TRUE(q.writer_start());
    EXPECT_FALSE(q.writer_start()) << "the started writer takes job 1";
    q.push(2, 10);
    EXPECT_TRUE(q.writer_start()) << "two queued, one free writer";
    EXPECT_FALSE(q.writer_start());
    /* Both writers take a job and hold it while writing. */
    EXPECT_EQ(q.pop(), 1U);
    EXPECT_EQ(q.pop(), 2U);
    q.push(3, 10);
    EXPECT_TRUE(q.writer_start()) << "both writers are busy";
    EXPECT_FALSE(q.writer_start());
    EXPECT_EQ(q.writers(), 3U);
    /* A writer done with its job takes the next: no new writer needed. */
    q.release(10);
    q.push(4, 10);
    EXPECT_FALSE(q.writer_start());
}

TEST(StoreQueue, ReleasingMoreThanHeldAborts) {
    StoreQueue q;
    EXPECT_DEATH(q.release(1), "releasing 1 bytes from a store backlog of 0");
    q.push(1, 5);
    EXPECT_DEATH(q.release(6), "releasing 6 bytes");
    EXPECT_DEATH(q.writer_stop(), "without a writer started");
}

/* ---- The pipeline through the core ---- */

constexpr uint64_t kCs = 64 * 1024;

class StoreTest : public ::testing::Test {
protected:
    void make(uint64_t base, uint64_t max_fetch = kMiB, uint32_t cs = kCs) {
        ASSERT_TRUE(ic_geometry_init(&g_, base, cs, nullptr, 0));
        core_ = unit::make_core(g_, 3, max_fetch);
        ASSERT_NE(core_, nullptr);
    }

    /* Plans [offset, +bytes) as one fetch whose base read succeeds. */
    IcFetchId fetched(uint64_t offset, uint64_t bytes) {
        std::vector<IcSegment> segs(1);
        EXPECT_EQ(core_->plan(offset, bytes, segs), 1U);
        EXPECT_EQ(segs[0].kind, IC_SEG_FETCH);
        core_->fetch_set_opaque(segs[0].fetch, &marker_);
        core_->fetch_done(segs[0].fetch, true);
        return segs[0].fetch;
    }

    IcStats stats() const { return core_->stats(); }

    IcGeometry g_{};
    std::unique_ptr<Core> core_;
    int marker_ = 0;
};

TEST_F(StoreTest, AdmitQueuesAndCountsTheBacklog) {
    make(16 * kMiB);
    const IcFetchId a = fetched(0, 2 * kCs);
    const IcFetchId b = fetched(10 * kCs, kCs);
    ASSERT_TRUE(core_->store_admit(a));
    ASSERT_TRUE(core_->store_admit(b));
    EXPECT_EQ(stats().store_backlog, 3 * kCs);
    EXPECT_EQ(stats().inflight_fetches, 2U);

    /* Still in flight: readers keep waiting on the glue's buffer. */
    std::vector<IcSegment> segs(1);
    ASSERT_EQ(core_->plan(kCs, 1, segs), 1U);
    EXPECT_EQ(segs[0].kind, IC_SEG_WAIT);
    EXPECT_EQ(segs[0].fetch, a);

    ASSERT_TRUE(core_->store_writer_start());
    IcStoreJob job{};
    ASSERT_TRUE(core_->store_next(job));
    EXPECT_EQ(job.fetch, a) << "queue order";
    EXPECT_EQ(job.opaque, &marker_);
    EXPECT_EQ(job.cache_offset, g_.data_offset);
    EXPECT_EQ(job.cache_offset, core_->cache_offset(0));
    EXPECT_EQ(job.bytes, 2 * kCs);
    EXPECT_TRUE(job.write);
    EXPECT_EQ(stats().store_backlog, 3 * kCs) << "until stored";
    core_->fetch_stored(a, true);
    EXPECT_EQ(stats().store_backlog, kCs);
    EXPECT_TRUE(core_->cluster_present(0));
    EXPECT_TRUE(core_->cluster_present(1));

    ASSERT_TRUE(core_->store_next(job));
    EXPECT_EQ(job.fetch, b);
    EXPECT_EQ(job.cache_offset, core_->cache_offset(10 * kCs));
    core_->fetch_stored(b, false); /* the write failed */
    EXPECT_EQ(stats().store_backlog, 0U);
    EXPECT_EQ(stats().store_errors, 1U);
    EXPECT_FALSE(core_->cluster_present(10));
    EXPECT_FALSE(core_->store_next(job)) << "empty: the writer exits";
    EXPECT_EQ(stats().inflight_fetches, 0U);
}

TEST_F(StoreTest, QueueOrderIsFifoAcrossWriters) {
    make(64 * kMiB, kCs);
    std::vector<IcFetchId> ids;
    for (uint64_t c = 0; c < 20; c++) {
        /* Out of base order: the queue follows admission, not offsets. */
        ids.push_back(fetched(((c * 7) % 20) * kCs, kCs));
        ASSERT_TRUE(core_->store_admit(ids.back()));
    }
    unsigned writers = 0;
    while (core_->store_writer_start()) {
        writers++;
    }
    EXPECT_EQ(writers, IC_STORE_WRITERS);
    /* Writers take jobs in turn; together they see admission order. */
    std::vector<IcFetchId> order;
    IcStoreJob job{};
    std::vector<bool> alive(writers, true);
    unsigned running = writers;
    while (running > 0) {
        for (unsigned w = 0; w < writers; w++) {
            if (!alive[w]) {
                continue;
            }
            if (!core_->store_next(job)) {
                alive[w] = false;
                running--;
                continue;
            }
            order.push_back(job.fetch);
            core_->fetch_stored(job.fetch, true);
        }
    }
    EXPECT_EQ(order, ids);
    EXPECT_DEATH(core_->store_next(job), "without a writer") << "all exited";
    EXPECT_EQ(stats().cached_clusters, 20U);
    EXPECT_EQ(stats().store_backlog, 0U);
}

TEST_F(StoreTest, WritersOnlyForQueuedWork) {
    make(16 * kMiB);
    EXPECT_FALSE(core_->store_writer_start());
    const IcFetchId a = fetched(0, kCs);
    ASSERT_TRUE(core_->store_admit(a));
    EXPECT_TRUE(core_->store_writer_start());
    EXPECT_FALSE(core_->store_writer_start()) << "one job, one writer";
    IcStoreJob job{};
    ASSERT_TRUE(core_->store_next(job));
    EXPECT_FALSE(core_->store_writer_start()) << "the queue is empty now";
    /* A job admitted while the only writer writes gets a second one. */
    const IcFetchId b = fetched(kCs, kCs);
    ASSERT_TRUE(core_->store_admit(b));
    EXPECT_TRUE(core_->store_writer_start());
    core_->fetch_stored(a, true);
    ASSERT_TRUE(core_->store_next(job)); /* the first writer takes b */
    EXPECT_EQ(job.fetch, b);
    core_->fetch_stored(b, true);
    EXPECT_FALSE(core_->store_next(job)); /* both writers exit */
    EXPECT_FALSE(core_->store_next(job));
    EXPECT_DEATH(core_->store_next(job),
                 "ic_core_store_next\\(\\) without a writer started");
}

TEST_F(StoreTest, BacklogLimitRefusesAndDrops) {
    /* 2 MiB clusters, 32 MiB fetches: two fill the 64 MiB backlog. */
    const uint64_t cs = IC_MAX_CLUSTER_SIZE;
    make(256 * kMiB, 32 * kMiB, cs);
    const IcFetchId a = fetched(0, 32 * kMiB);
    const IcFetchId b = fetched(32 * kMiB, 32 * kMiB);
    const IcFetchId c = fetched(64 * kMiB, 2 * kMiB);
    ASSERT_TRUE(core_->store_admit(a));
    ASSERT_TRUE(core_->store_admit(b));
    EXPECT_EQ(stats().store_backlog, IC_STORE_BACKLOG_LIMIT);
    EXPECT_FALSE(core_->store_admit(c)) << "would exceed the limit";
    EXPECT_EQ(stats().store_skipped, 1U);
    EXPECT_EQ(stats().inflight_fetches, 2U) << "c is forgotten";
    /* Its clusters are absent: the next read fetches them again. */
    std::vector<IcSegment> segs(1);
    ASSERT_EQ(core_->plan(64 * kMiB, 1, segs), 1U);
    EXPECT_EQ(segs[0].kind, IC_SEG_FETCH);
    core_->fetch_done(segs[0].fetch, true);
    EXPECT_DEATH(core_->fetch_stored(c, true), "unknown fetch");

    /* Once a is stored there is room again. */
    ASSERT_TRUE(core_->store_writer_start());
    IcStoreJob job{};
    ASSERT_TRUE(core_->store_next(job));
    EXPECT_EQ(job.fetch, a);
    core_->fetch_stored(a, true);
    EXPECT_TRUE(core_->store_admit(segs[0].fetch)) << "room again";
    EXPECT_EQ(stats().store_backlog, 34 * kMiB);
    ASSERT_TRUE(core_->store_next(job));
    EXPECT_EQ(job.fetch, b);
    core_->fetch_stored(b, true);
    ASSERT_TRUE(core_->store_next(job));
    EXPECT_EQ(job.fetch, segs[0].fetch);
    core_->fetch_stored(job.fetch, true);
    EXPECT_FALSE(core_->store_next(job));
    EXPECT_EQ(stats().cached_clusters, 33U);
}

TEST_F(StoreTest, BacklogIsReleasedWhenStoredNotWhenTaken) {
    const uint64_t cs = IC_MAX_CLUSTER_SIZE;
    make(256 * kMiB, 32 * kMiB, cs);
    ASSERT_TRUE(core_->store_admit(fetched(0, 32 * kMiB)));
    ASSERT_TRUE(core_->store_admit(fetched(32 * kMiB, 32 * kMiB)));
    ASSERT_TRUE(core_->store_writer_start());
    IcStoreJob job{};
    ASSERT_TRUE(core_->store_next(job));
    /* Taken but not written: the buffer still exists, still counted. */
    const IcFetchId more = fetched(64 * kMiB, 2 * kMiB);
    EXPECT_FALSE(core_->store_admit(more));
    core_->fetch_dropped(job.fetch); /* the writer gave up on it */
    EXPECT_EQ(stats().store_backlog, 32 * kMiB);
    EXPECT_EQ(stats().store_skipped, 2U);
    const IcFetchId again = fetched(64 * kMiB, 2 * kMiB);
    EXPECT_TRUE(core_->store_admit(again));
    EXPECT_EQ(stats().store_backlog, 34 * kMiB);
    ASSERT_TRUE(core_->store_next(job));
    core_->fetch_stored(job.fetch, true);
    ASSERT_TRUE(core_->store_next(job));
    EXPECT_EQ(job.fetch, again);
    core_->fetch_stored(job.fetch, true);
    EXPECT_FALSE(core_->store_next(job));
    EXPECT_EQ(stats().store_backlog, 0U);
}

TEST_F(StoreTest, AdmitRefusedUnlessCaching) {
    for (const int how : {0, 1, 2}) {
        make(16 * kMiB);
        if (how == 0) {
            core_->cache_failed(true); /* STOPPED */
        } else if (how == 1) {
            core_->cache_failed(false); /* BYPASSED */
        } else {
            core_->set_active(false); /* INACTIVE */
        }
        const IcFetchId a = fetched(0, kCs);
        EXPECT_FALSE(core_->store_admit(a)) << how;
        EXPECT_EQ(stats().store_skipped, 1U);
        EXPECT_EQ(stats().store_backlog, 0U);
        EXPECT_EQ(stats().inflight_fetches, 0U);
        EXPECT_FALSE(core_->store_writer_start());
    }
}

TEST_F(StoreTest, LeavingCachingDropsQueuedJobs) {
    make(16 * kMiB);
    const IcFetchId a = fetched(0, kCs);
    const IcFetchId b = fetched(5 * kCs, 3 * kCs);
    const IcFetchId c = fetched(9 * kCs, kCs);
    ASSERT_TRUE(core_->store_admit(a));
    ASSERT_TRUE(core_->store_admit(b));
    ASSERT_TRUE(core_->store_admit(c));
    ASSERT_TRUE(core_->store_writer_start());
    IcStoreJob job{};
    ASSERT_TRUE(core_->store_next(job));
    EXPECT_TRUE(job.write);
    EXPECT_EQ(job.fetch, a);

    EXPECT_TRUE(core_->cache_failed(true)); /* a write failed elsewhere */

    /* The rest come out in order, already dropped. */
    IcStoreJob dropped{};
    ASSERT_TRUE(core_->store_next(dropped));
    EXPECT_EQ(dropped.fetch, b);
    EXPECT_FALSE(dropped.write);
    EXPECT_EQ(dropped.opaque, &marker_) << "for the glue to release";
    EXPECT_EQ(dropped.bytes, 3 * kCs);
    EXPECT_EQ(dropped.cache_offset, core_->cache_offset(5 * kCs));
    EXPECT_EQ(stats().store_skipped, 1U);
    EXPECT_EQ(stats().store_backlog, 2 * kCs) << "a (being written) and c";
    EXPECT_DEATH(core_->fetch_stored(b, true), "unknown fetch");
    ASSERT_TRUE(core_->store_next(dropped));
    EXPECT_EQ(dropped.fetch, c);
    EXPECT_FALSE(dropped.write);
    EXPECT_EQ(stats().store_skipped, 2U);

    /* The job taken before the change is still written and counted. */
    core_->fetch_stored(a, true);
    EXPECT_TRUE(core_->cluster_present(0));
    EXPECT_FALSE(core_->cluster_present(5));
    EXPECT_FALSE(core_->store_next(job));
    EXPECT_EQ(stats().store_backlog, 0U);
    EXPECT_EQ(stats().inflight_fetches, 0U);
}

TEST_F(StoreTest, LastPartialClusterIsWrittenToTheEndOfTheBase) {
    make(5 * kCs + 123);
    const IcFetchId a = fetched(4 * kCs, kCs + 123);
    ASSERT_TRUE(core_->store_admit(a));
    EXPECT_EQ(stats().store_backlog, kCs + 123);
    ASSERT_TRUE(core_->store_writer_start());
    IcStoreJob job{};
    ASSERT_TRUE(core_->store_next(job));
    EXPECT_EQ(job.bytes, kCs + 123);
    EXPECT_EQ(job.cache_offset + job.bytes, core_->cache_offset(g_.base_size));
    core_->fetch_stored(a, true);
    EXPECT_FALSE(core_->store_next(job));
}

TEST_F(StoreTest, ProtocolErrorsAbort) {
    make(16 * kMiB);
    const IcFetchId a = fetched(0, kCs);
    ASSERT_TRUE(core_->store_admit(a));
    EXPECT_DEATH(core_->store_admit(a),
                 "ic_core_store_admit\\(\\) of fetch 1, which is queued, "
                 "not done");
    EXPECT_DEATH(core_->fetch_stored(a, true),
                 "ic_core_fetch_stored\\(\\) of fetch 1, which is queued");
    EXPECT_DEATH(core_->fetch_dropped(a),
                 "ic_core_fetch_dropped\\(\\) of fetch 1, which is queued");
    EXPECT_DEATH(core_->fetch_done(a, true), "which is queued, not pending");
    EXPECT_DEATH(core_->set_active(false),
                 "deactivating with 1 store\\(s\\) queued or being written");
    ASSERT_TRUE(core_->store_writer_start());
    IcStoreJob job{};
    ASSERT_TRUE(core_->store_next(job));
    EXPECT_DEATH(core_->set_active(false), "deactivating with 1 store");
    EXPECT_DEATH(core_->store_admit(a), "which is writing, not done");
    core_->fetch_stored(a, true);
    EXPECT_FALSE(core_->store_next(job));
    core_->set_active(false); /* drained: fine */
    EXPECT_EQ(core_->cache_state(), IC_CACHE_INACTIVE);
}

TEST_F(StoreTest, StoredWithoutTheQueueStillWorks) {
    /* A fetch that is done may be stored directly: no backlog involved. */
    make(16 * kMiB);
    const IcFetchId a = fetched(0, kCs);
    core_->fetch_stored(a, true);
    EXPECT_TRUE(core_->cluster_present(0));
    EXPECT_EQ(stats().store_backlog, 0U);
    EXPECT_TRUE(unit::store_via_queue(*core_, fetched(kCs, kCs)));
    EXPECT_TRUE(core_->cluster_present(1));
}

} // namespace
