/*
 * Unit tests: deferred stores of an unbounded cache (ReuseMeter,
 * DeferredStores, and the core through the C API as the glue uses it).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "ic_deferred.hpp"
#include "ic_reuse_meter.hpp"
#include "unit_helpers.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace {

using intellicache::BusyGate;
using intellicache::DeferredStores;
using intellicache::ReuseMeter;

/* The first @n sampled clusters from @from on. */
std::vector<uint64_t> sampled_clusters(uint64_t from, size_t n) {
    std::vector<uint64_t> out;
    for (uint64_t c = from; out.size() < n; c++) {
        if (ReuseMeter::sampled(c)) {
            out.push_back(c);
        }
    }
    return out;
}

TEST(ReuseMeter, SamplesOneClusterInSixteen) {
    uint64_t n = 0;
    for (uint64_t c = 0; c < 1U << 20; c++) {
        n += ReuseMeter::sampled(c) ? 1 : 0;
    }
    EXPECT_NEAR(static_cast<double>(n) / (1U << 20), 1.0 / 16, 0.002);
    /* Sequential runs are sampled as evenly: no 16-cluster gap is empty. */
    unsigned longest = 0, gap = 0;
    for (uint64_t c = 0; c < 1U << 16; c++) {
        gap = ReuseMeter::sampled(c) ? 0 : gap + 1;
        longest = std::max(longest, gap);
    }
    EXPECT_LT(longest, 64U);
}

TEST(ReuseMeter, LowOnlyOnceJudgedAndWhenFewAreReadAgain) {
    ReuseMeter m;
    const auto cs = sampled_clusters(0, 400);
    for (size_t i = 0; i < ReuseMeter::kMinSample - 1; i++) {
        m.entered(cs[i]);
    }
    EXPECT_FALSE(m.low()) << "judged from kMinSample entries";
    m.entered(cs[ReuseMeter::kMinSample - 1]);
    EXPECT_TRUE(m.low());

    /* Reading each entry again once is enough reuse. */
    for (size_t i = 0; i < ReuseMeter::kMinSample; i++) {
        m.read(cs[i]);
    }
    EXPECT_FALSE(m.low());
    /* A cluster read again many times counts once. */
    ReuseMeter m2;
    for (size_t i = 0; i < 64; i++) {
        m2.entered(cs[i]);
    }
    for (int k = 0; k < 100; k++) {
        m2.read(cs[0]);
    }
    EXPECT_TRUE(m2.low());
    /* Reads of clusters out of the sample change nothing. */
    for (uint64_t c = 0; c < 4096; c++) {
        if (!ReuseMeter::sampled(c)) {
            m2.read(c);
        }
    }
    EXPECT_TRUE(m2.low());
}

TEST(ReuseMeter, FollowsAChangeOfWorkload) {
    ReuseMeter m;
    const auto cs = sampled_clusters(0, 2000);
    size_t i = 0;
    for (; i < 300; i++) {
        m.entered(cs[i]);
    }
    ASSERT_TRUE(m.low());
    /* Every new entry read again at once: the window forgets the past. */
    for (; i < 600; i++) {
        m.entered(cs[i]);
        m.read(cs[i]);
    }
    EXPECT_FALSE(m.low());
    /* A read far behind the tracked entries is not counted. */
    for (; i < 1200; i++) {
        m.entered(cs[i]);
    }
    ASSERT_TRUE(m.low());
    for (size_t j = 0; j < 300; j++) {
        m.read(cs[j]);
    }
    EXPECT_TRUE(m.low());
}

TEST(DeferredStores, TakesRunsInOrderUpToMax) {
    DeferredStores d;
    EXPECT_EQ(d.memory_bytes(), 0U) << "nothing allocated before a push";
    EXPECT_FALSE(d.take(16));
    d.push(10, 3);
    d.push(13, 2);
    d.push(40, 1);
    d.push(7, 1);
    EXPECT_EQ(d.size(), 7U);
    auto r = d.take(4);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->first, 10U);
    EXPECT_EQ(r->count, 4U);
    r = d.take(4);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->first, 14U);
    EXPECT_EQ(r->count, 1U) << "40 does not follow 14";
    r = d.take(4);
    EXPECT_EQ(r->first, 40U);
    r = d.take(4);
    EXPECT_EQ(r->first, 7U);
    EXPECT_FALSE(d.take(4));
    EXPECT_EQ(d.memory_bytes(), 0U) << "given back once empty";
}

TEST(DeferredStores, RoomIsBounded) {
    DeferredStores d;
    EXPECT_TRUE(d.room(DeferredStores::kSlots));
    EXPECT_FALSE(d.room(DeferredStores::kSlots + 1));
    d.push(0, DeferredStores::kSlots - 1);
    EXPECT_TRUE(d.room(1));
    EXPECT_FALSE(d.room(2));
    EXPECT_EQ(d.memory_bytes(), DeferredStores::kSlots * 4);
    d.clear();
    EXPECT_EQ(d.size(), 0U);
    EXPECT_EQ(d.memory_bytes(), 0U);
    EXPECT_TRUE(d.room(DeferredStores::kSlots));
}

/*
 * Busy from 600 thousandths on, until below 300: deferring halves what a
 * miss costs the thread, and must not end at the next window for that.
 */
TEST(BusyGate, ChangesAtTwoLevels) {
    BusyGate g;
    EXPECT_FALSE(g.busy());
    g.note(599);
    EXPECT_FALSE(g.busy());
    g.note(600);
    EXPECT_TRUE(g.busy());
    g.note(300);
    EXPECT_TRUE(g.busy()) << "within the band: unchanged";
    g.note(299);
    EXPECT_FALSE(g.busy());
    g.note(500);
    EXPECT_FALSE(g.busy()) << "within the band: unchanged";
}

/* The core: 4 KiB clusters over a base of 64 MiB, unbounded. */
constexpr uint32_t kCs = 4096;
constexpr uint64_t kClusters = 16384;

IcCore *unbounded_core() {
    IcGeometry g;
    EXPECT_TRUE(ic_geometry_init(&g, kClusters * kCs, kCs, nullptr, 0));
    IcCore *core = ic_core_new(&g, 7, 16 * kCs, 16, nullptr, 0);
    EXPECT_NE(core, nullptr);
    return core;
}

IcStats stats_of(const IcCore *core) {
    IcStats st;
    ic_core_get_stats(core, &st);
    return st;
}

/*
 * A guest reads cluster @c once, the node's thread busy @permille of its
 * time (always, by default); true if its data was stored.
 */
bool guest_read(IcCore *core, uint64_t c, unsigned permille = 1000) {
    ic_core_note_thread_busy(core, permille);
    return unit::read_and_store(core, c * kCs, kCs);
}

/* The @i-th cluster of a scattered order. */
uint64_t scattered(uint64_t i) {
    return (i * 7919) % kClusters;
}

/*
 * Clusters read once, in a scattered order, until reuse is low; returns
 * how many.  All are stored but the last: its entry made reuse low.
 */
uint64_t read_until_low(IcCore *core) {
    uint64_t n = 0;
    bool stored = true;
    for (; n < kClusters && stored; n++) {
        stored = guest_read(core, scattered(n));
    }
    EXPECT_TRUE(stats_of(core).reuse_low);
    EXPECT_EQ(stats_of(core).deferred_bytes, kCs);
    return n;
}

TEST(Deferred, MissesReadOnceAreDeferredThenTakenWhenGuestsAreQuiet) {
    IcCore *core = unbounded_core();
    const uint64_t n = read_until_low(core);
    /* Judged from kMinSample sampled entries: about 16 times as many. */
    EXPECT_GT(n, 300U);
    EXPECT_LT(n, 1200U);
    std::vector<uint64_t> deferred{scattered(n - 1)};
    for (uint64_t i = n; i < n + 100; i++) {
        EXPECT_FALSE(guest_read(core, scattered(i))) << "deferred";
        deferred.push_back(scattered(i));
    }
    /* Not while the thread is idle: storing then costs guests nothing. */
    EXPECT_TRUE(guest_read(core, scattered(n + 100), 299));
    IcStats st = stats_of(core);
    EXPECT_EQ(st.deferred_bytes, 101 * kCs);
    EXPECT_EQ(st.deferred_total_bytes, 101 * kCs);
    EXPECT_EQ(st.cached_clusters, n);

    /* Read-ahead and prefetch are stored all the same. */
    IcSegment seg;
    ASSERT_EQ(ic_core_plan_prefetch(core, 1 * kCs, kCs, &seg), 1U);
    ASSERT_EQ(seg.kind, IC_SEG_FETCH);
    EXPECT_TRUE(unit::store_fetch(core, seg));

    /* Not while guests miss. */
    IcRange r;
    ic_core_note_guest_miss(core, 1000);
    EXPECT_FALSE(ic_core_defer_take(core, 1000 + IC_GUEST_QUIET_MS - 1, &r));
    for (uint64_t c : deferred) {
        ASSERT_TRUE(ic_core_defer_take(core, 1000 + IC_GUEST_QUIET_MS, &r));
        EXPECT_EQ(r.offset, c * kCs);
        EXPECT_EQ(r.bytes, kCs);
    }
    EXPECT_FALSE(ic_core_defer_take(core, 1000 + IC_GUEST_QUIET_MS, &r));
    EXPECT_FALSE(ic_core_defer_pending(core));
    EXPECT_EQ(stats_of(core).deferred_bytes, 0U);
    ic_core_free(core);
}

TEST(Deferred, ReuseStoresMissesAgain) {
    IcCore *core = unbounded_core();
    uint64_t n = read_until_low(core);
    /* A working set read twice: the first reads are deferred... */
    std::vector<uint64_t> set;
    for (uint64_t i = 0; i < 1024; i++, n++) {
        set.push_back(scattered(n));
    }
    for (int pass = 0; pass < 2; pass++) {
        for (uint64_t c : set) {
            IcSegment seg;
            ASSERT_EQ(ic_core_plan(core, c * kCs, kCs, &seg, 1), 1U);
            if (seg.kind == IC_SEG_FETCH) {
                unit::store_fetch(core, seg);
            }
        }
    }
    /* ...the second pass is seen as reuse, and stores again. */
    EXPECT_FALSE(stats_of(core).reuse_low);
    EXPECT_TRUE(guest_read(core, scattered(n)));
    ic_core_free(core);
}

/*
 * Guests that read the same clusters at once (a boot storm) join one
 * fetch: stored at once, and counted as reuse, though their reads came
 * before the clusters entered.  Before, such fetches were deferred and
 * the guest that came a little later fetched them again.
 */
TEST(Deferred, AFetchTwoGuestsWaitOnIsStored) {
    IcCore *core = unbounded_core();
    uint64_t n = read_until_low(core);
    for (int i = 0; i < 64; i++, n++) {
        const uint64_t c = scattered(n);
        IcSegment first;
        IcSegment second;
        ASSERT_EQ(ic_core_plan(core, c * kCs, kCs, &first, 1), 1U);
        ASSERT_EQ(first.kind, IC_SEG_FETCH);
        ASSERT_EQ(ic_core_plan(core, c * kCs, kCs, &second, 1), 1U);
        ASSERT_EQ(second.kind, IC_SEG_WAIT);
        EXPECT_TRUE(unit::store_fetch(core, first)) << i;
    }
    EXPECT_FALSE(stats_of(core).reuse_low);
    EXPECT_EQ(stats_of(core).deferred_bytes, kCs);
    ic_core_free(core);
}

TEST(Deferred, ABoundedCacheDoesNotDefer) {
    IcCore *core = unbounded_core();
    const uint64_t n = read_until_low(core);
    EXPECT_FALSE(guest_read(core, scattered(n)));
    EXPECT_TRUE(ic_core_defer_pending(core));
    IcSettings set{};
    set.cluster_size = kCs;
    set.cache_size = kClusters * kCs;
    char why[128];
    ASSERT_TRUE(
        ic_core_set_bound(core, &set, nullptr, nullptr, why, sizeof(why)))
        << why;
    EXPECT_FALSE(ic_core_defer_pending(core)) << "forgotten when bounded";
    EXPECT_EQ(stats_of(core).deferred_total_bytes, 2 * kCs);
    ic_core_free(core);
}

TEST(Deferred, NothingIsTakenWhileNotCaching) {
    IcCore *core = unbounded_core();
    const uint64_t n = read_until_low(core);
    EXPECT_FALSE(guest_read(core, scattered(n)));
    ic_core_cache_failed(core, true);
    IcRange r;
    EXPECT_FALSE(ic_core_defer_take(core, 1U << 30, &r));
    ic_core_free(core);
}

} // namespace
