/*
 * Unit tests: a bounded cache (cache-size), through the C API as the glue
 * uses it: the budget, admission, and the order of freeing a batch.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "ic_budget.hpp"
#include "ic_message.hpp"
#include "unit_helpers.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <vector>

namespace {

constexpr uint32_t kCs = 4096;
constexpr uint64_t kClusters = 1024;
constexpr uint64_t kBase = kClusters * kCs;

/* A core over a 4 MiB base of 4 KiB clusters, bounded to @capacity. */
IcCore *bounded_core(uint64_t capacity, uint64_t scan_threshold = 0,
                     IcGeometry *geometry = nullptr) {
    IcGeometry g;
    EXPECT_TRUE(ic_geometry_init(&g, kBase, kCs, nullptr, 0));
    IcCore *core = ic_core_new(&g, 7, 16 * kCs, 16, nullptr, 0);
    EXPECT_NE(core, nullptr);
    IcSettings set{};
    set.cluster_size = kCs;
    set.cache_size = capacity * kCs;
    set.scan_threshold = scan_threshold;
    char why[128];
    EXPECT_TRUE(
        ic_core_set_bound(core, &set, nullptr, nullptr, why, sizeof(why)))
        << why;
    if (geometry != nullptr) {
        *geometry = g;
    }
    return core;
}

IcStats stats_of(const IcCore *core) {
    IcStats st;
    ic_core_get_stats(core, &st);
    return st;
}

/* Read clusters [first, first + count) and store them: true if stored. */
bool read_and_store(IcCore *core, uint64_t first, uint64_t count) {
    return unit::read_and_store(core, first * kCs, count * kCs);
}

bool present(IcCore *core, uint64_t cluster) {
    return ic_core_cluster_present(core, cluster);
}

/* Run a metadata sync as the glue does, with the outcome @ok. */
void sync(IcCore *core, bool ok = true) {
    ASSERT_TRUE(ic_core_sync_begin(core));
    ic_core_sync_end(core, ok);
}

std::vector<IcRange> batch_ranges(const IcCore *core) {
    std::vector<IcRange> out;
    IcRange r[4];
    for (size_t from = 0;;) {
        const size_t n = ic_core_evict_ranges(core, from, r, 4);
        if (n == 0) {
            return out;
        }
        out.insert(out.end(), r, r + n);
        from += n;
    }
}

TEST(Bounded, StoresUpToTheBoundThenNeedsABatch) {
    IcCore *core = bounded_core(64);
    uint64_t stored = 0;
    for (uint64_t c = 0; c < 64; c++) {
        stored += read_and_store(core, c * 2, 1) ? 1 : 0;
    }
    EXPECT_EQ(stored, 64U) << "the bound holds 64 clusters";
    IcStats st = stats_of(core);
    EXPECT_EQ(st.capacity_clusters, 64U);
    EXPECT_EQ(st.used_clusters, 64U);
    EXPECT_TRUE(ic_core_evict_needed(core));

    EXPECT_FALSE(read_and_store(core, 500, 1)) << "no room: not stored";
    st = stats_of(core);
    EXPECT_EQ(st.no_room_bytes, kCs);
    EXPECT_FALSE(present(core, 500));
    EXPECT_EQ(st.used_clusters, 64U);
    ic_core_free(core);
}

/*
 * The order that keeps a crash from leaving a record over a hole: the
 * batch's clusters are absent at once, not durable until a sync after the
 * batch began has ended well, and not stored again until the batch ends.
 */
TEST(Bounded, FreeingABatchFollowsTheCrashSafeOrder) {
    IcGeometry g;
    IcCore *core = bounded_core(32, 0, &g);
    for (uint64_t c = 0; c < 32; c++) {
        ASSERT_TRUE(read_and_store(core, c, 1));
    }
    sync(core);
    ASSERT_TRUE(ic_core_evict_needed(core));
    const size_t n = ic_core_evict_begin(core);
    ASSERT_GT(n, 0U);
    EXPECT_FALSE(ic_core_evict_needed(core)) << "one batch at a time";

    const std::vector<IcRange> ranges = batch_ranges(core);
    ASSERT_EQ(ranges.size(), n);
    std::set<uint64_t> victims;
    for (const IcRange &r : ranges) {
        ASSERT_GE(r.offset, g.data_offset);
        ASSERT_EQ((r.offset - g.data_offset) % kCs, 0U);
        ASSERT_EQ(r.bytes % kCs, 0U);
        for (uint64_t b = 0; b < r.bytes; b += kCs) {
            victims.insert((r.offset - g.data_offset + b) / kCs);
        }
    }
    /* 1/32 of 32 is a headroom of 1; the batch leaves 2 free. */
    EXPECT_EQ(victims.size(), 2U);
    for (const uint64_t v : victims) {
        EXPECT_FALSE(present(core, v)) << "absent from the start";
    }

    /* Its records must be written: a sync is needed, and must succeed. */
    EXPECT_FALSE(ic_core_evict_durable(core));
    ASSERT_TRUE(ic_core_sync_needed(core));
    sync(core, false);
    EXPECT_FALSE(ic_core_evict_durable(core)) << "a failed sync is no record";
    ASSERT_TRUE(ic_core_sync_begin(core));
    /* The block written now records the victims as absent. */
    IcMetaRun run;
    ASSERT_EQ(ic_core_sync_runs(core, &run, 1), 1U);
    uint8_t block[IC_META_BLOCK_SIZE];
    ic_core_encode_meta_block(core, run.first, block);
    IcGeometry g2 = g;
    IcCore *reader = ic_core_new(&g2, 7, 16 * kCs, 16, nullptr, 0);
    ASSERT_EQ(ic_core_load_meta_block(reader, run.first, block), IC_META_OK);
    for (uint64_t c = 0; c < 32; c++) {
        EXPECT_EQ(ic_core_cluster_present(reader, c), victims.count(c) == 0)
            << "cluster " << c;
    }
    ic_core_free(reader);
    ic_core_sync_end(core, true);
    EXPECT_TRUE(ic_core_evict_durable(core));

    /* A victim read again meanwhile is fetched but not stored. */
    const uint64_t v = *victims.begin();
    EXPECT_FALSE(read_and_store(core, v, 1));
    EXPECT_FALSE(present(core, v));

    ic_core_evict_end(core);
    IcStats st = stats_of(core);
    EXPECT_EQ(st.evicted_clusters, 2U);
    EXPECT_EQ(st.used_clusters, 30U);
    EXPECT_TRUE(read_and_store(core, v, 1)) << "stored again after the batch";
    EXPECT_TRUE(present(core, v));
    ic_core_free(core);
}

/* A scan's data is returned but not stored, and not read ahead. */
TEST(Bounded, ScansAreNotStored) {
    IcCore *core = bounded_core(512, 64 * kCs);
    uint64_t ra_offset = 0;
    uint64_t ra_bytes = 0;
    ic_core_set_read_ahead(core, 32 * kCs);
    bool read_ahead_seen = false;
    uint64_t stored = 0;
    for (uint64_t c = 0; c < 256; c += 8) {
        const bool ra =
            ic_core_note_read(core, c * kCs, 8 * kCs, &ra_offset, &ra_bytes);
        read_ahead_seen = read_ahead_seen || ra;
        if (c >= 64) {
            EXPECT_FALSE(ra) << "no read-ahead for a scan, at " << c;
        }
        stored += read_and_store(core, c, 8) ? 8 : 0;
    }
    EXPECT_TRUE(read_ahead_seen) << "before it was a scan";
    EXPECT_EQ(stored, 56U) << "up to the 64-cluster threshold, exclusive";
    IcStats st = stats_of(core);
    EXPECT_EQ(st.scan_bytes, (256 - 56) * kCs);
    ic_core_free(core);
}

/* A cache as large as the base stores scans: it never evicts. */
TEST(Bounded, ACacheAsLargeAsTheBaseStoresScans) {
    IcCore *core = bounded_core(kClusters, 4 * kCs);
    uint64_t ra_offset = 0;
    uint64_t ra_bytes = 0;
    for (uint64_t c = 0; c < 64; c += 8) {
        ic_core_note_read(core, c * kCs, 8 * kCs, &ra_offset, &ra_bytes);
        EXPECT_TRUE(read_and_store(core, c, 8));
    }
    ic_core_free(core);
}

/* A bound set on a cache with data takes what is present. */
TEST(Bounded, TheFirstBoundLoadsWhatIsPresent) {
    IcGeometry g;
    ASSERT_TRUE(ic_geometry_init(&g, kBase, kCs, nullptr, 0));
    IcCore *core = ic_core_new(&g, 7, 16 * kCs, 16, nullptr, 0);
    ASSERT_NE(core, nullptr);
    ASSERT_TRUE(read_and_store(core, 0, 16));
    ASSERT_TRUE(read_and_store(core, 100, 16));
    EXPECT_FALSE(ic_core_evict_needed(core)) << "unbounded";

    IcSettings set{};
    set.cluster_size = kCs;
    set.cache_size = 20 * kCs;
    ASSERT_TRUE(ic_core_set_bound(core, &set, nullptr, nullptr, nullptr, 0));
    IcStats st = stats_of(core);
    EXPECT_EQ(st.used_clusters, 32U);
    EXPECT_EQ(st.capacity_clusters, 20U);
    /* Shrinking: batches until within the bound, less the headroom. */
    uint64_t freed = 0;
    while (ic_core_evict_needed(core)) {
        ic_core_evict_begin(core);
        for (const IcRange &r : batch_ranges(core)) {
            freed += r.bytes / kCs;
        }
        sync(core);
        ASSERT_TRUE(ic_core_evict_durable(core));
        ic_core_evict_end(core);
    }
    st = stats_of(core);
    EXPECT_LE(st.used_clusters, 19U);
    EXPECT_EQ(st.cached_clusters, st.used_clusters);
    EXPECT_EQ(freed, 32 - st.used_clusters);

    /* Unbounded again: everything fits, nothing to free. */
    set.cache_size = 0;
    ASSERT_TRUE(ic_core_set_bound(core, &set, nullptr, nullptr, nullptr, 0));
    st = stats_of(core);
    EXPECT_EQ(st.capacity_clusters, 0U);
    EXPECT_FALSE(ic_core_evict_needed(core));
    ic_core_free(core);
}

/* Zero fills take no room: they are not counted, nor evicted. */
TEST(Bounded, ZerosTakeNoRoom) {
    IcCore *core = bounded_core(8);
    IcSegment seg;
    ASSERT_EQ(ic_core_plan_zeros(core, 0, 16 * kCs, &seg), 1U);
    ASSERT_EQ(seg.kind, IC_SEG_FETCH);
    ic_core_fetch_done(core, seg.fetch, true);
    ASSERT_TRUE(ic_core_store_admit(core, seg.fetch));
    ASSERT_TRUE(ic_core_store_writer_start(core));
    IcStoreJob job;
    ASSERT_TRUE(ic_core_store_next(core, &job));
    ASSERT_TRUE(job.zeros);
    ic_core_fetch_stored(core, job.fetch, true);
    EXPECT_FALSE(ic_core_store_next(core, &job));
    IcStats st = stats_of(core);
    EXPECT_EQ(st.cached_clusters, 16U);
    EXPECT_EQ(st.used_clusters, 0U);
    EXPECT_FALSE(ic_core_evict_needed(core));
    ic_core_free(core);
}

/* Room reserved at admission is given back however the store ends. */
TEST(Bounded, ReservationsAreGivenBack) {
    IcCore *core = bounded_core(64);
    IcSegment seg;
    ASSERT_EQ(ic_core_plan(core, 0, 8 * kCs, &seg, 1), 1U);
    ic_core_fetch_done(core, seg.fetch, true);
    ASSERT_TRUE(ic_core_store_admit(core, seg.fetch));
    EXPECT_EQ(stats_of(core).used_clusters, 8U) << "reserved";
    ASSERT_TRUE(ic_core_store_writer_start(core));
    IcStoreJob job;
    ASSERT_TRUE(ic_core_store_next(core, &job));
    ic_core_fetch_stored(core, job.fetch, false);
    EXPECT_EQ(stats_of(core).used_clusters, 0U) << "a failed write";
    EXPECT_FALSE(ic_core_store_next(core, &job));

    ASSERT_EQ(ic_core_plan(core, 0, 8 * kCs, &seg, 1), 1U);
    ic_core_fetch_done(core, seg.fetch, true);
    ASSERT_TRUE(ic_core_store_admit(core, seg.fetch));
    ASSERT_TRUE(ic_core_store_writer_start(core));
    ASSERT_TRUE(ic_core_store_next(core, &job));
    ic_core_fetch_dropped(core, job.fetch);
    EXPECT_EQ(stats_of(core).used_clusters, 0U) << "a dropped write";
    EXPECT_FALSE(ic_core_store_next(core, &job));

    /* Queued when the cache stops: the writer's job says write=false. */
    ASSERT_EQ(ic_core_plan(core, 0, 8 * kCs, &seg, 1), 1U);
    ic_core_fetch_done(core, seg.fetch, true);
    ASSERT_TRUE(ic_core_store_admit(core, seg.fetch));
    ic_core_cache_failed(core, true);
    ASSERT_TRUE(ic_core_store_writer_start(core));
    ASSERT_TRUE(ic_core_store_next(core, &job));
    EXPECT_FALSE(job.write);
    EXPECT_EQ(stats_of(core).used_clusters, 0U) << "a skipped write";
    EXPECT_FALSE(ic_core_evict_needed(core)) << "a stopped cache frees nothing";
    ic_core_free(core);
}

/* Free a batch if one is needed, as the glue does. */
void free_if_needed(IcCore *core) {
    if (ic_core_evict_needed(core)) {
        ic_core_evict_begin(core);
        sync(core);
        ic_core_evict_end(core);
    }
}

/*
 * A full cache whose clusters are read once each stores none of its misses
 * once the policy has seen that little is reused: they are returned and
 * counted as not admitted.  A prefetch is stored anyway.
 */
TEST(Bounded, AFullCacheWithoutReuseAdmitsFew) {
    IcCore *core = bounded_core(64);
    uint64_t c = 0;
    for (; c < kClusters - 64 && !stats_of(core).reuse_low; c++) {
        ASSERT_TRUE(read_and_store(core, c, 1)) << "cluster " << c;
        free_if_needed(core);
    }
    ASSERT_TRUE(stats_of(core).reuse_low);
    unsigned stored = 0;
    for (unsigned i = 0; i < 320; i++, c++) {
        stored += read_and_store(core, c, 1) ? 1 : 0;
        free_if_needed(core);
    }
    EXPECT_EQ(stored, 0U);
    IcStats st = stats_of(core);
    EXPECT_EQ(st.unadmitted_bytes, 320U * kCs);
    EXPECT_EQ(st.no_room_bytes, 0U) << "eviction kept up";

    IcSegment seg;
    ASSERT_EQ(ic_core_plan_prefetch(core, c * kCs, kCs, &seg), 1U);
    ASSERT_EQ(seg.kind, IC_SEG_FETCH);
    EXPECT_TRUE(unit::store_fetch(core, seg)) << "a prefetch is stored";
    EXPECT_EQ(stats_of(core).unadmitted_bytes, st.unadmitted_bytes);
    ic_core_free(core);
}

/* Hits keep a cluster from being chosen before colder ones. */
TEST(Bounded, HitsProtectClustersFromEviction) {
    IcCore *core = bounded_core(64);
    for (uint64_t c = 0; c < 64; c++) {
        ASSERT_TRUE(read_and_store(core, c, 1));
    }
    /* Read the first 8 again: hits. */
    for (uint64_t c = 0; c < 8; c++) {
        IcSegment seg;
        ASSERT_EQ(ic_core_plan(core, c * kCs, kCs, &seg, 1), 1U);
        ASSERT_EQ(seg.kind, IC_SEG_HIT);
    }
    ASSERT_TRUE(ic_core_evict_needed(core));
    ic_core_evict_begin(core);
    for (uint64_t c = 0; c < 8; c++) {
        EXPECT_TRUE(present(core, c)) << "hit cluster " << c << " was freed";
    }
    sync(core);
    ic_core_evict_end(core);
    ic_core_free(core);
}

/*
 * A cluster stored by read-ahead and then read once was used once: it
 * goes before a cluster a reader missed and then read again.
 */
TEST(Bounded, ReadAheadDataReadOnceIsNotAReuse) {
    IcGeometry g;
    IcCore *core = bounded_core(16, 0, &g);
    IcSegment seg;
    ASSERT_EQ(ic_core_plan_read_ahead(core, 0, 8 * kCs, &seg), 1U);
    ASSERT_EQ(seg.kind, IC_SEG_FETCH);
    ASSERT_TRUE(unit::store_fetch(core, seg));
    ASSERT_TRUE(read_and_store(core, 100, 8));
    /* Each cluster is read once more, one read per cluster. */
    for (const uint64_t first : {0U, 100U}) {
        for (uint64_t c = first; c < first + 8; c++) {
            ASSERT_EQ(ic_core_plan(core, c * kCs, kCs, &seg, 1), 1U);
            ASSERT_EQ(seg.kind, IC_SEG_HIT);
        }
    }
    ASSERT_TRUE(ic_core_evict_needed(core));
    ic_core_evict_begin(core);
    for (const IcRange &r : batch_ranges(core)) {
        const uint64_t c = (r.offset - g.data_offset) / kCs;
        EXPECT_LT(c, 8U) << "a cluster read again was chosen before one "
                            "read once after read-ahead";
    }
    sync(core);
    ic_core_evict_end(core);
    ic_core_free(core);
}

TEST(BoundedDeathTest, ProtocolErrorsAbort) {
    IcCore *core = bounded_core(64);
    EXPECT_DEATH(ic_core_evict_begin(core), "when no batch is needed");
    IcRange r;
    EXPECT_DEATH(ic_core_evict_ranges(core, 0, &r, 1), "no batch");
    EXPECT_DEATH(ic_core_evict_end(core), "no batch");
    for (uint64_t c = 0; c < 64; c++) {
        ASSERT_TRUE(read_and_store(core, c, 1));
    }
    ic_core_evict_begin(core);
    IcSettings set{};
    set.cluster_size = kCs;
    set.cache_size = 128 * kCs;
    EXPECT_DEATH(ic_core_set_bound(core, &set, nullptr, nullptr, nullptr, 0),
                 "while a batch is being freed");
    sync(core);
    ic_core_evict_end(core);
    ic_core_free(core);
}

} // namespace
