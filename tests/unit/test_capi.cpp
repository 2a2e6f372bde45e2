/*
 * Unit tests: smoke tests through the extern "C" API only, as the QEMU
 * glue uses it (compiled as C++, but only intellicache-core.h is used).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace {

constexpr uint32_t kCs = 64 * 1024;
constexpr uint64_t kBase = 10ULL * 1024 * 1024 + 4321;

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

    IcCore *core = ic_core_new(&g, found.instance, IC_DEFAULT_MAX_FETCH);
    ASSERT_NE(core, nullptr);
    EXPECT_EQ(std::memcmp(ic_core_geometry(core), &g, sizeof(g)), 0);

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

    /* Sync: flush (simulated), write the listed blocks, finish. */
    ASSERT_TRUE(ic_core_sync_begin(core));
    ASSERT_EQ(ic_core_sync_block_count(core), 1U);
    uint64_t blocks[4];
    ASSERT_EQ(ic_core_sync_blocks(core, blocks, 4), 1U);
    EXPECT_EQ(blocks[0], 0U);
    EXPECT_EQ(ic_core_meta_block_offset(core, blocks[0]), g.meta_offset);
    uint8_t block[IC_META_BLOCK_SIZE];
    ic_core_encode_meta_block(core, blocks[0], block);
    ic_core_sync_end(core, true);
    EXPECT_FALSE(ic_core_sync_needed(core));

    IcStats st;
    ic_core_get_stats(core, &st);
    EXPECT_EQ(st.read_requests, 3U);
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
    IcCore *again = ic_core_new(&g, found.instance, IC_DEFAULT_MAX_FETCH);
    ASSERT_NE(again, nullptr);
    EXPECT_EQ(ic_core_load_meta_block(again, 0, block), IC_META_OK);
    EXPECT_TRUE(ic_core_cluster_present(again, 3));
    n = ic_core_plan(again, 0, 4 * kCs, segs, 8);
    ASSERT_EQ(n, 1U);
    EXPECT_EQ(segs[0].kind, IC_SEG_HIT);
    ic_core_free(again);

    /* A reformat (new instance) makes the old block stale. */
    IcCore *reformatted = ic_core_new(&g, 0xBEEFULL, IC_DEFAULT_MAX_FETCH);
    EXPECT_EQ(ic_core_load_meta_block(reformatted, 0, block), IC_META_STALE);
    EXPECT_FALSE(ic_core_cluster_present(reformatted, 0));
    ic_core_free(reformatted);
}

TEST(CApi, PresentRunsForBlockStatus) {
    IcGeometry g;
    ASSERT_TRUE(ic_geometry_init(&g, kBase, kCs, nullptr, 0));
    IcCore *core = ic_core_new(&g, 1, IC_DEFAULT_MAX_FETCH);
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
    ASSERT_TRUE(ic_geometry_init(&g, kBase, kCs, nullptr, 0));
    g.data_offset = 0; /* data on top of the header */
    EXPECT_EQ(ic_core_new(&g, 1, IC_DEFAULT_MAX_FETCH), nullptr);
    EXPECT_EQ(ic_core_new(nullptr, 1, IC_DEFAULT_MAX_FETCH), nullptr);
    std::memset(&g, 0, sizeof(g));
    EXPECT_EQ(ic_core_new(&g, 1, IC_DEFAULT_MAX_FETCH), nullptr);
}

TEST(CApi, FreeNullIsFine) {
    ic_core_free(nullptr);
}

TEST(CApi, FailedFetchThenRetry) {
    IcGeometry g;
    ASSERT_TRUE(ic_geometry_init(&g, kBase, kCs, nullptr, 0));
    IcCore *core = ic_core_new(&g, 1, 0); /* one cluster per fetch */
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

TEST(CApi, SyncBlocksWithNullOrZero) {
    IcGeometry g;
    ASSERT_TRUE(ic_geometry_init(&g, kBase, kCs, nullptr, 0));
    IcCore *core = ic_core_new(&g, 1, IC_DEFAULT_MAX_FETCH);
    ASSERT_NE(core, nullptr);
    EXPECT_EQ(ic_core_sync_blocks(core, nullptr, 0), 0U);
    uint64_t b = 77;
    EXPECT_EQ(ic_core_sync_blocks(core, &b, 1), 0U);
    EXPECT_EQ(b, 77U);
    ic_core_free(core);
}

} // namespace
