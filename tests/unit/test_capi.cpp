/*
 * Unit tests: smoke tests through the extern "C" API only, as the QEMU
 * glue uses it (compiled as C++, but only intellicache-core.h is used).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "alloc_counter.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/resource.h>

namespace {

constexpr uint32_t kCs = 64 * 1024;
constexpr uint64_t kBase = 10ULL * 1024 * 1024 + 4321;

IcCore *new_core(const IcGeometry *g, uint64_t instance,
                 uint64_t max_fetch = IC_DEFAULT_MAX_FETCH) {
    return ic_core_new(g, instance, max_fetch, IC_DEFAULT_MAX_INFLIGHT, nullptr,
                       0);
}

TEST(CApi, ColdOpenFormatReadStoreSyncReopen) {
    IcGeometry g;
    char why[128];
    ASSERT_TRUE(ic_geometry_init(&g, kBase, kCs, why, sizeof(why))) << why;

    /* A brand-new, empty cache file. */
    IcHeaderInfo expected;
    std::memset(&expected, 0, sizeof(expected));
    expected.cluster_size = kCs;
    expected.base_size = kBase;
    std::memset(expected.fingerprint, 0x5A, IC_FINGERPRINT_SIZE);
    IcHeaderInfo found;
    EXPECT_EQ(
        ic_header_check(nullptr, 0, 0, &expected, &found, why, sizeof(why)),
        IC_HEADER_EMPTY);

    /* Format: header plus a simulated file of the right size. */
    IcHeaderInfo h = expected;
    h.version = IC_FORMAT_VERSION;
    h.instance = 0xFEEDULL;
    uint8_t header[IC_HEADER_SIZE];
    ic_header_encode(&h, header);
    ASSERT_EQ(ic_header_check(header, sizeof(header), g.file_size, &expected,
                              &found, why, sizeof(why)),
              IC_HEADER_OK)
        << why;
    EXPECT_EQ(found.instance, h.instance);

    IcCore *core = new_core(&g, found.instance);
    ASSERT_NE(core, nullptr);
    /* Field by field: the struct has padding after cluster_size. */
    const IcGeometry *cg = ic_core_geometry(core);
    EXPECT_EQ(cg->base_size, g.base_size);
    EXPECT_EQ(cg->cluster_size, g.cluster_size);
    EXPECT_EQ(cg->cluster_count, g.cluster_count);
    EXPECT_EQ(cg->meta_offset, g.meta_offset);
    EXPECT_EQ(cg->meta_blocks, g.meta_blocks);
    EXPECT_EQ(cg->data_offset, g.data_offset);
    EXPECT_EQ(cg->file_size, g.file_size);

    /* A read: one new fetch, which a second reader joins. */
    IcSegment segs[8];
    size_t n = ic_core_plan(core, 1000, 200000, segs, 8);
    ASSERT_EQ(n, 1U);
    EXPECT_EQ(segs[0].kind, IC_SEG_FETCH);
    const IcFetchId id = segs[0].fetch;
    int waiters = 0;
    ic_core_fetch_set_opaque(core, id, &waiters);
    n = ic_core_plan(core, 0, 100, segs, 8);
    ASSERT_EQ(n, 1U);
    EXPECT_EQ(segs[0].kind, IC_SEG_WAIT);
    EXPECT_EQ(segs[0].opaque, &waiters);

    ic_core_fetch_done(core, id, true);
    ic_core_fetch_stored(core, id, true);
    EXPECT_TRUE(ic_core_cluster_present(core, 0));
    EXPECT_TRUE(ic_core_cluster_present(core, 3));
    EXPECT_FALSE(ic_core_cluster_present(core, 4));
    EXPECT_TRUE(ic_core_sync_needed(core));

    n = ic_core_plan(core, 1000, 200000, segs, 8);
    ASSERT_EQ(n, 1U);
    EXPECT_EQ(segs[0].kind, IC_SEG_HIT);
    EXPECT_EQ(segs[0].cache_offset, g.data_offset + 1000);

    /* Sync: flush (simulated), write the listed runs, flush, finish. */
    ASSERT_TRUE(ic_core_sync_begin(core));
    ASSERT_EQ(ic_core_sync_runs(core, nullptr, 0), 1U);
    IcMetaRun runs[4];
    ASSERT_EQ(ic_core_sync_runs(core, runs, 4), 1U);
    EXPECT_EQ(runs[0].first, 0U);
    EXPECT_EQ(runs[0].count, 1U);
    EXPECT_EQ(runs[0].offset, g.meta_offset);
    EXPECT_EQ(ic_core_meta_block_offset(core, runs[0].first), g.meta_offset);
    uint8_t block[IC_META_BLOCK_SIZE];
    ic_core_encode_meta_block(core, runs[0].first, block);
    ic_core_sync_end(core, true);
    EXPECT_FALSE(ic_core_sync_needed(core));

    IcStats st;
    ic_core_get_stats(core, &st);
    EXPECT_EQ(st.fetches, 1U);
    EXPECT_EQ(st.miss_bytes, 200000U);
    EXPECT_EQ(st.wait_bytes, 100U);
    EXPECT_EQ(st.hit_bytes, 200000U);
    EXPECT_EQ(st.fetched_bytes, 4U * kCs);
    EXPECT_EQ(st.stored_bytes, 4U * kCs);
    EXPECT_EQ(st.cached_clusters, 4U);
    EXPECT_EQ(st.durable_clusters, 4U);
    EXPECT_EQ(st.inflight_fetches, 0U);
    ic_core_free(core);

    /* Reopen: the block brings the clusters back. */
    IcCore *again = new_core(&g, found.instance);
    ASSERT_NE(again, nullptr);
    EXPECT_EQ(ic_core_load_meta_block(again, 0, block), IC_META_OK);
    EXPECT_TRUE(ic_core_cluster_present(again, 3));
    n = ic_core_plan(again, 0, 4 * kCs, segs, 8);
    ASSERT_EQ(n, 1U);
    EXPECT_EQ(segs[0].kind, IC_SEG_HIT);
    ic_core_free(again);

    /* A reformat (new instance) makes the old block stale. */
    IcCore *reformatted = new_core(&g, 0xBEEFULL);
    EXPECT_EQ(ic_core_load_meta_block(reformatted, 0, block), IC_META_STALE);
    EXPECT_FALSE(ic_core_cluster_present(reformatted, 0));
    ic_core_free(reformatted);
}

TEST(CApi, PresentRunsForBlockStatus) {
    IcGeometry g;
    ASSERT_TRUE(ic_geometry_init(&g, kBase, kCs, nullptr, 0));
    IcCore *core = new_core(&g, 1);
    ASSERT_NE(core, nullptr);
    const uint64_t last = g.cluster_count - 1;
    const uint64_t tail = kBase - last * kCs; /* the short last cluster */
    bool present = true;

    /* Nothing cached: one absent run up to the request's end or EOF. */
    EXPECT_EQ(ic_core_present_run(core, 100, kBase, &present), kBase - 100);
    EXPECT_FALSE(present);
    EXPECT_EQ(ic_core_present_run(core, 100, 5, &present), 5U);

    /* Clusters 2-3 stored; cluster 5 being fetched (not present yet). */
    IcSegment seg;
    ASSERT_EQ(ic_core_plan(core, 2 * kCs, 2 * kCs, &seg, 1), 1U);
    ic_core_fetch_done(core, seg.fetch, true);
    ic_core_fetch_stored(core, seg.fetch, true);
    IcSegment pending;
    ASSERT_EQ(ic_core_plan(core, 5 * kCs, kCs, &pending, 1), 1U);
    ic_core_fetch_done(core, pending.fetch, true);

    EXPECT_EQ(ic_core_present_run(core, 10, 10 * kCs, &present), 2 * kCs - 10);
    EXPECT_FALSE(present);
    EXPECT_EQ(ic_core_present_run(core, 2 * kCs + 7, 10 * kCs, &present),
              2 * kCs - 7);
    EXPECT_TRUE(present);
    EXPECT_EQ(ic_core_present_run(core, 3 * kCs, 100, &present), 100U);
    EXPECT_TRUE(present);
    EXPECT_EQ(ic_core_present_run(core, 4 * kCs, 10 * kCs, &present), 10 * kCs);
    EXPECT_FALSE(present);

    /* The short last cluster: a run ends at the end of the base. */
    ASSERT_EQ(ic_core_plan(core, last * kCs, tail, &seg, 1), 1U);
    ic_core_fetch_done(core, seg.fetch, true);
    ic_core_fetch_stored(core, seg.fetch, true);
    EXPECT_EQ(ic_core_present_run(core, last * kCs + 1, kCs, &present),
              tail - 1);
    EXPECT_TRUE(present);
    EXPECT_EQ(ic_core_present_run(core, kBase, 10, &present), 0U);
    EXPECT_FALSE(present);
    EXPECT_EQ(ic_core_present_run(core, 0, 0, &present), 0U);
    ic_core_free(core);
}

TEST(CApi, InvalidGeometryGivesNoCore) {
    IcGeometry g;
    char why[128];
    ASSERT_TRUE(ic_geometry_init(&g, kBase, kCs, nullptr, 0));
    g.data_offset = 0; /* data on top of the header */
    EXPECT_EQ(ic_core_new(&g, 1, IC_DEFAULT_MAX_FETCH, 16, why, sizeof(why)),
              nullptr);
    EXPECT_STREQ(why, "invalid cache geometry: not a layout that "
                      "ic_geometry_init() computes");
    EXPECT_EQ(new_core(nullptr, 1), nullptr);
    std::memset(&g, 0, sizeof(g));
    EXPECT_EQ(new_core(&g, 1), nullptr);
}

TEST(CApi, MaxInflightOutOfRangeGivesNoCore) {
    IcGeometry g;
    char why[128];
    ASSERT_TRUE(ic_geometry_init(&g, kBase, kCs, nullptr, 0));
    EXPECT_EQ(ic_core_new(&g, 1, kCs, 0, why, sizeof(why)), nullptr);
    EXPECT_STREQ(why, "max-inflight must be from 1 to 1024, not 0");
    EXPECT_EQ(
        ic_core_new(&g, 1, kCs, IC_MAX_INFLIGHT_LIMIT + 1, why, sizeof(why)),
        nullptr);
    IcCore *core =
        ic_core_new(&g, 1, kCs, IC_MAX_INFLIGHT_LIMIT, why, sizeof(why));
    ASSERT_NE(core, nullptr);
    EXPECT_STREQ(why, "") << "success leaves an empty message";
    ic_core_free(core);
}

/*
 * The presence bitmap is sized by the user: 2^32 clusters take 512 MiB.
 * Allocating it must fail with a message, not abort.  The failure is
 * injected (operator new refuses large requests) rather than provoked, so
 * the test needs neither the memory nor an address-space limit.
 */
/* The address space this process has mapped now (VmSize). */
static rlim_t mapped_bytes() {
    unsigned long long pages = 0;
    FILE *f = std::fopen("/proc/self/statm", "r");
    if (f != nullptr) {
        if (std::fscanf(f, "%llu", &pages) != 1) {
            pages = 0;
        }
        std::fclose(f);
    }
    return static_cast<rlim_t>(pages) * 4096;
}

TEST(CApi, UnallocatableStateGivesNoCoreAndAMessage) {
    IcGeometry g;
    char why[160];
    const uint64_t base = IC_MAX_CLUSTER_COUNT * IC_MIN_CLUSTER_SIZE;
    ASSERT_TRUE(
        ic_geometry_init(&g, base, IC_MIN_CLUSTER_SIZE, why, sizeof(why)))
        << why;
    ASSERT_EQ(g.cluster_count, IC_MAX_CLUSTER_COUNT);
    IcCore *core = nullptr;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    GTEST_LOG_(INFO) << "the 512 MiB bitmaps under an address-space limit: "
                        "not with a sanitizer, which maps terabytes";
#else
    /*
     * The bitmaps come from calloc(), which the operator new hook below
     * does not see, and are mapped lazily: a real limit makes them fail.
     * In a child, so that the limit does not outlive the check.
     */
    EXPECT_EXIT(
        {
            struct rlimit lim;
            getrlimit(RLIMIT_AS, &lim);
            lim.rlim_cur = 256ULL * 1024 * 1024 + mapped_bytes();
            setrlimit(RLIMIT_AS, &lim);
            IcCore *c = ic_core_new(&g, 1, IC_DEFAULT_MAX_FETCH,
                                    IC_DEFAULT_MAX_INFLIGHT, why, sizeof(why));
            std::fprintf(stderr, "%s\n", c == nullptr ? why : "created");
            std::exit(c == nullptr ? 0 : 1);
        },
        ::testing::ExitedWithCode(0),
        "cannot allocate the state of 4294967296 clusters \\(512 MiB\\): "
        "choose a larger cluster-size");
#endif

    /* Small bitmaps are described in KiB; any allocation may fail. */
    ASSERT_TRUE(ic_geometry_init(&g, kBase, kCs, nullptr, 0));
    {
        const unit::FailAllocationsFrom fail(1);
        core = ic_core_new(&g, 1, IC_DEFAULT_MAX_FETCH, IC_DEFAULT_MAX_INFLIGHT,
                           why, sizeof(why));
    }
    EXPECT_EQ(core, nullptr);
    EXPECT_STREQ(why, "cannot allocate the state of 161 clusters (1 KiB): "
                      "choose a larger cluster-size");
    /* Without the injected failure the same call succeeds. */
    core = ic_core_new(&g, 1, IC_DEFAULT_MAX_FETCH, IC_DEFAULT_MAX_INFLIGHT,
                       why, sizeof(why));
    ASSERT_NE(core, nullptr) << why;
    ic_core_free(core);
}

TEST(CApi, FreeNullIsFine) {
    ic_core_free(nullptr);
}

TEST(CApi, FailedFetchThenRetry) {
    IcGeometry g;
    ASSERT_TRUE(ic_geometry_init(&g, kBase, kCs, nullptr, 0));
    IcCore *core = new_core(&g, 1, 0); /* one cluster per fetch */
    ASSERT_NE(core, nullptr);
    IcSegment segs[4];
    ASSERT_EQ(ic_core_plan(core, 0, 3 * kCs, segs, 4), 3U);
    ASSERT_EQ(ic_core_plan(core, 3 * kCs, 1, segs, 1), 1U);
    ic_core_fetch_done(core, segs[0].fetch, false);
    IcStats st;
    ic_core_get_stats(core, &st);
    EXPECT_EQ(st.fetch_errors, 1U);
    EXPECT_EQ(st.inflight_fetches, 3U);
    ASSERT_EQ(ic_core_plan(core, 3 * kCs, 1, segs, 1), 1U);
    EXPECT_EQ(segs[0].kind, IC_SEG_FETCH);
    EXPECT_EQ(segs[0].fetch_offset, 3U * kCs);
    EXPECT_EQ(segs[0].fetch_bytes, uint64_t{kCs});
    EXPECT_FALSE(ic_core_sync_begin(core));
    ic_core_free(core);
}

TEST(CApi, SyncRunsWithNullOrZero) {
    IcGeometry g;
    ASSERT_TRUE(ic_geometry_init(&g, kBase, kCs, nullptr, 0));
    IcCore *core = new_core(&g, 1);
    ASSERT_NE(core, nullptr);
    EXPECT_EQ(ic_core_sync_runs(core, nullptr, 0), 0U);
    IcMetaRun r{77, 77, 77};
    EXPECT_EQ(ic_core_sync_runs(core, &r, 1), 0U) << "no sync running";
    EXPECT_EQ(r.first, 77U);

    IcSegment seg;
    ASSERT_EQ(ic_core_plan(core, 0, 1, &seg, 1), 1U);
    ic_core_fetch_done(core, seg.fetch, true);
    ic_core_fetch_stored(core, seg.fetch, true);
    ASSERT_TRUE(ic_core_sync_begin(core));
    EXPECT_EQ(ic_core_sync_runs(core, nullptr, 5), 1U) << "NULL: max 0";
    EXPECT_EQ(ic_core_sync_runs(core, &r, 0), 1U);
    EXPECT_EQ(r.first, 77U) << "max 0 writes nothing";
    ic_core_sync_end(core, true);
    ic_core_free(core);
}

/*
 * One cold read through the whole pipeline, in the order the glue makes
 * the calls: plan, slot, base read, admit, writer, store, sync, pool.
 */
TEST(CApi, MissThroughTheWholePipeline) {
    IcGeometry g;
    ASSERT_TRUE(ic_geometry_init(&g, kBase, kCs, nullptr, 0));
    char why[128];
    IcCore *core = ic_core_new(&g, 9, 4 * kCs, 2, why, sizeof(why));
    ASSERT_NE(core, nullptr) << why;

    IcSegment seg;
    ASSERT_EQ(ic_core_plan(core, 5 * kCs + 1, 3 * kCs, &seg, 1), 1U);
    ASSERT_EQ(seg.kind, IC_SEG_FETCH);
    EXPECT_EQ(seg.fetch_bytes, 4 * kCs);
    int fetch_object = 0;
    ic_core_fetch_set_opaque(core, seg.fetch, &fetch_object);

    ASSERT_TRUE(ic_core_slot_take(core, IC_FETCH_DEMAND));
    EXPECT_EQ(ic_core_buf_take(core, seg.fetch_bytes), nullptr) << "empty";
    alignas(64) static uint8_t buffer[4 * kCs];
    ic_core_fetch_done(core, seg.fetch, true);
    EXPECT_FALSE(ic_core_slot_put(core)) << "nobody waits";

    ASSERT_TRUE(ic_core_store_admit(core, seg.fetch));
    IcStats st;
    ic_core_get_stats(core, &st);
    EXPECT_EQ(st.store_backlog, 4 * kCs);
    ASSERT_TRUE(ic_core_store_writer_start(core));
    EXPECT_FALSE(ic_core_store_writer_start(core)) << "one job, one writer";
    IcStoreJob job;
    ASSERT_TRUE(ic_core_store_next(core, &job));
    EXPECT_EQ(job.fetch, seg.fetch);
    EXPECT_EQ(job.opaque, &fetch_object);
    EXPECT_EQ(job.cache_offset, ic_core_cache_offset(core, 5 * kCs));
    EXPECT_EQ(job.cache_offset, g.data_offset + 5 * kCs);
    EXPECT_EQ(job.bytes, 4 * kCs);
    EXPECT_TRUE(job.write);
    ic_core_fetch_stored(core, job.fetch, true);
    EXPECT_FALSE(ic_core_store_next(core, &job)) << "the writer exits";
    ic_core_get_stats(core, &st);
    EXPECT_EQ(st.store_backlog, 0U);
    EXPECT_EQ(st.cached_clusters, 4U);

    /* The buffer goes back to the pool, and out of it once idle. */
    EXPECT_TRUE(ic_core_buf_give(core, buffer, job.bytes));
    ASSERT_TRUE(ic_core_sync_begin(core));
    IcMetaRun run;
    ASSERT_EQ(ic_core_sync_runs(core, &run, 1), 1U);
    EXPECT_EQ(run.offset, g.meta_offset);
    ic_core_sync_end(core, true);
    ic_core_get_stats(core, &st);
    EXPECT_EQ(st.durable_clusters, 4U);
    EXPECT_EQ(ic_core_buf_reclaim(core), buffer);
    EXPECT_EQ(ic_core_buf_reclaim(core), nullptr);
    EXPECT_EQ(ic_core_cache_state(core), IC_CACHE_CACHING);
    ic_core_free(core);
}

/*
 * Zeros the base reported: recorded through the store pipeline without a
 * base read, a slot or room in the backlog, and present once written.
 */
TEST(CApi, ZerosAreRecordedWithoutReadingTheBase) {
    IcGeometry g;
    ASSERT_TRUE(ic_geometry_init(&g, kBase, kCs, nullptr, 0));
    char why[128];
    IcCore *core = ic_core_new(&g, 9, 4 * kCs, 1, why, sizeof(why));
    ASSERT_NE(core, nullptr) << why;

    /* The only slot is busy: a zero fill needs none. */
    ASSERT_TRUE(ic_core_slot_take(core, IC_FETCH_DEMAND));
    IcSegment seg;
    ASSERT_EQ(ic_core_plan_zeros(core, 2 * kCs, 6 * kCs, &seg), 1U);
    ASSERT_EQ(seg.kind, IC_SEG_FETCH);
    EXPECT_EQ(seg.fetch_offset, 2 * kCs);
    EXPECT_EQ(seg.fetch_bytes, 4 * kCs) << "split at max-fetch";
    int fill = 0;
    ic_core_fetch_set_opaque(core, seg.fetch, &fill);

    /* A reader meanwhile waits on it, as on any fetch. */
    IcSegment rseg;
    ASSERT_EQ(ic_core_plan(core, 3 * kCs, 100, &rseg, 1), 1U);
    EXPECT_EQ(rseg.kind, IC_SEG_WAIT);
    EXPECT_EQ(rseg.opaque, &fill);

    ic_core_fetch_done(core, seg.fetch, true);
    ASSERT_TRUE(ic_core_store_admit(core, seg.fetch));
    IcStats st;
    ic_core_get_stats(core, &st);
    EXPECT_EQ(st.store_backlog, 0U) << "no data, no backlog";
    EXPECT_EQ(st.fetched_bytes, 0U);
    EXPECT_EQ(st.fetches, 0U);

    ASSERT_TRUE(ic_core_store_writer_start(core));
    IcStoreJob job;
    ASSERT_TRUE(ic_core_store_next(core, &job));
    EXPECT_TRUE(job.zeros);
    EXPECT_TRUE(job.write);
    EXPECT_EQ(job.bytes, 4 * kCs);
    EXPECT_EQ(job.cache_offset, ic_core_cache_offset(core, 2 * kCs));
    ic_core_fetch_stored(core, job.fetch, true);
    EXPECT_FALSE(ic_core_store_next(core, &job));

    ic_core_get_stats(core, &st);
    EXPECT_EQ(st.zeroed_bytes, 4 * kCs);
    EXPECT_EQ(st.stored_bytes, 0U);
    EXPECT_EQ(st.cached_clusters, 4U);
    EXPECT_EQ(st.inflight_fetches, 0U);
    EXPECT_TRUE(ic_core_sync_needed(core)) << "recorded durably like data";
    bool present = false;
    EXPECT_EQ(ic_core_present_run(core, 2 * kCs, 4 * kCs, &present), 4 * kCs);
    EXPECT_TRUE(present);

    /* The rest of the range; then nothing is left to fill. */
    ASSERT_EQ(ic_core_plan_zeros(core, 6 * kCs, 2 * kCs, &seg), 1U);
    ASSERT_EQ(seg.kind, IC_SEG_FETCH);
    ic_core_fetch_done(core, seg.fetch, true);
    ic_core_fetch_dropped(core, seg.fetch);
    ASSERT_EQ(ic_core_plan_zeros(core, 2 * kCs, 4 * kCs, &seg), 1U);
    EXPECT_EQ(seg.kind, IC_SEG_HIT);
    EXPECT_EQ(ic_core_plan_zeros(core, 0, 0, &seg), 0U);

    /* Not while the cache does not store. */
    ic_core_set_active(core, false);
    EXPECT_EQ(ic_core_plan_zeros(core, 8 * kCs, kCs, &seg), 0U);
    EXPECT_FALSE(ic_core_slot_put(core));
    ic_core_free(core);
}

TEST(CApiDeathTest, FreeWithPooledBuffersAborts) {
    IcGeometry g;
    ASSERT_TRUE(ic_geometry_init(&g, kBase, kCs, nullptr, 0));
    IcCore *core = new_core(&g, 1, kCs);
    ASSERT_NE(core, nullptr);
    static uint8_t buffer[kCs];
    ASSERT_TRUE(ic_core_buf_give(core, buffer, kCs));
    EXPECT_DEATH(ic_core_free(core),
                 "1 pooled fetch buffer\\(s\\) left: the glue must call "
                 "ic_core_buf_reclaim\\(\\) until it returns NULL before "
                 "ic_core_free\\(\\)");
    EXPECT_EQ(ic_core_buf_reclaim(core), buffer);
    ic_core_free(core);
}

} // namespace
