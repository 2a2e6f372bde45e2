/*
 * Unit tests: the host-wide budget (PoolBudget) and caches sharing it
 * through the C API.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "alloc_counter.hpp"
#include "ic_pool.hpp"
#include "unit_helpers.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace {

using intellicache::PoolBudget;

constexpr uint32_t kCs = 4096;
constexpr uint64_t kClusters = 1024;

TEST(PoolBudget, TakeGiveAndTheBound) {
    PoolBudget p(10 * kCs);
    int a = 0;
    int b = 0;
    p.join(&a, &a);
    p.join(&b, &b);
    EXPECT_TRUE(p.take(&a, 6 * kCs));
    EXPECT_TRUE(p.take(&b, 4 * kCs));
    EXPECT_FALSE(p.take(&b, 1)) << "full";
    EXPECT_EQ(p.used(), 10 * kCs);
    p.give(&a, kCs);
    EXPECT_TRUE(p.take(&b, kCs));
    p.force(&a, 5 * kCs);
    EXPECT_EQ(p.used(), 15 * kCs) << "forced beyond the size";
    p.leave(&a);
    EXPECT_EQ(p.used(), 5 * kCs);
    EXPECT_EQ(p.members(), 1U);
    p.leave(&b);
}

/* Under pressure the member that holds the most is asked, once. */
TEST(PoolBudget, TheFullestMemberIsAskedToFreeRoom) {
    PoolBudget p(320 * kCs); /* headroom 10 clusters */
    int a = 0;
    int b = 0;
    p.join(&a, &a);
    p.join(&b, &b);
    ASSERT_TRUE(p.take(&a, 100 * kCs));
    ASSERT_TRUE(p.take(&b, 200 * kCs));
    EXPECT_EQ(p.victim(), nullptr) << "20 clusters free: enough";
    ASSERT_TRUE(p.take(&a, 15 * kCs));
    EXPECT_EQ(p.victim(), &b) << "5 free: the fullest frees";
    EXPECT_EQ(p.deficit(&b), 15 * kCs) << "to leave twice the headroom";
    EXPECT_EQ(p.deficit(&a), 0U);
    EXPECT_EQ(p.victim(), &b) << "asked again until it paid";
    p.give(&b, 10 * kCs);
    EXPECT_EQ(p.deficit(&b), 5 * kCs);
    EXPECT_EQ(p.victim(), nullptr) << "15 free";
    EXPECT_EQ(p.deficit(&b), 0U) << "no longer asked";
    p.leave(&a);
    p.leave(&b);
}

/* A member that joins with more than the size is asked for the excess. */
TEST(PoolBudget, BeyondTheSizeTheExcessIsAskedAtOnce) {
    PoolBudget p(320 * kCs); /* headroom 10 clusters */
    int a = 0;
    p.join(&a, &a);
    p.force(&a, 400 * kCs);
    EXPECT_EQ(p.victim(), &a);
    EXPECT_EQ(p.deficit(&a), 100 * kCs) << "80 over, and twice the headroom";
    p.give(&a, 100 * kCs);
    EXPECT_EQ(p.victim(), nullptr);
    p.leave(&a);
}

/* A member whose stores are seldom read again is asked before the fullest. */
TEST(PoolBudget, AMemberThatReusesLittleIsAskedFirst) {
    PoolBudget p(320 * kCs); /* headroom 10 clusters */
    int a = 0;
    int b = 0;
    int c = 0;
    p.join(&a, &a);
    p.join(&b, &b);
    p.join(&c, &c);
    ASSERT_TRUE(p.take(&a, 250 * kCs));
    ASSERT_TRUE(p.take(&b, 65 * kCs));
    p.set_reuse_low(&b, true);
    p.set_reuse_low(&c, true); /* holds nothing: nothing to ask */
    EXPECT_EQ(p.victim(), &b);
    EXPECT_EQ(p.deficit(&b), 15 * kCs);
    p.give(&b, 15 * kCs);
    EXPECT_EQ(p.victim(), nullptr);
    p.set_reuse_low(&b, false);
    ASSERT_TRUE(p.take(&b, 15 * kCs));
    EXPECT_EQ(p.victim(), &a) << "then the fullest";
    p.leave(&a);
    p.leave(&b);
    p.leave(&c);
}

TEST(PoolBudget, NobodyToAskWhenNothingIsHeld) {
    PoolBudget p(32);
    int a = 0;
    p.join(&a, &a);
    p.force(&a, 0);
    EXPECT_EQ(p.victim(), nullptr);
    p.leave(&a);
}

TEST(PoolBudget, ConcurrentMembersNeverExceedTheSize) {
    PoolBudget p(1000);
    std::vector<int> keys(4);
    for (int &k : keys) {
        p.join(&k, &k);
    }
    std::vector<std::thread> threads;
    std::vector<uint64_t> held(keys.size());
    for (size_t t = 0; t < keys.size(); t++) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 20000; i++) {
                if (p.take(&keys[t], 7)) {
                    held[t] += 7;
                }
                if (held[t] >= 7 && i % 3 == 0) {
                    p.give(&keys[t], 7);
                    held[t] -= 7;
                }
                EXPECT_LE(p.used(), 1000U);
            }
        });
    }
    for (std::thread &t : threads) {
        t.join();
    }
    uint64_t total = 0;
    for (const uint64_t h : held) {
        total += h;
    }
    EXPECT_EQ(p.used(), total);
    for (int &k : keys) {
        p.leave(&k);
    }
}

TEST(PoolBudgetDeathTest, MisuseAborts) {
    PoolBudget p(100);
    int a = 0;
    EXPECT_DEATH(p.take(&a, 1), "not a member of the pool");
    p.join(&a, &a);
    EXPECT_DEATH(p.join(&a, &a), "joining a pool twice");
    EXPECT_DEATH(p.give(&a, 1), "giving back 1 bytes");
    p.leave(&a);
}

IcSettings bound_of(uint64_t cache_size) {
    IcSettings set{};
    set.cluster_size = kCs;
    set.cache_size = cache_size;
    return set;
}

/* Two caches in one pool, through the C API as the glue drives them. */
IcCore *member(IcPool *pool, void *opaque, uint64_t cache_size = 0) {
    IcGeometry g;
    EXPECT_TRUE(ic_geometry_init(&g, kClusters * kCs, kCs, nullptr, 0));
    IcCore *core = ic_core_new(&g, 7, 16 * kCs, 16, nullptr, 0);
    const IcSettings set = bound_of(cache_size);
    EXPECT_TRUE(ic_core_set_bound(core, &set, pool, opaque, nullptr, 0));
    return core;
}

IcStats stats_of(const IcCore *core) {
    IcStats st;
    ic_core_get_stats(core, &st);
    return st;
}

bool store(IcCore *core, uint64_t first, uint64_t count) {
    return unit::read_and_store(core, first * kCs, count * kCs);
}

void free_batch(IcCore *core) {
    ASSERT_TRUE(ic_core_evict_needed(core));
    ic_core_evict_begin(core);
    ASSERT_TRUE(ic_core_sync_begin(core));
    ic_core_sync_end(core, true);
    ASSERT_TRUE(ic_core_evict_durable(core));
    ic_core_evict_end(core);
}

TEST(Pool, MembersShareTheBoundAndTheFullestFrees) {
    IcPool *pool = ic_pool_new(320 * kCs);
    ASSERT_NE(pool, nullptr);
    int node_a = 0;
    int node_b = 0;
    IcCore *a = member(pool, &node_a);
    IcCore *b = member(pool, &node_b);
    EXPECT_EQ(ic_pool_members(pool), 2U);

    uint64_t stored = 0;
    for (uint64_t c = 0; c < 200; c++) {
        stored += store(a, c, 1) ? 1 : 0;
    }
    for (uint64_t c = 0; c < 200; c++) {
        stored += store(b, c, 1) ? 1 : 0;
    }
    EXPECT_EQ(stored, 320U) << "the pool's size, no more";
    EXPECT_EQ(ic_pool_used(pool), 320 * kCs);
    EXPECT_FALSE(ic_core_evict_needed(a)) << "its own bound is the base";

    /* a holds 200, b 120: a is asked. */
    EXPECT_EQ(ic_pool_victim(pool), &node_a);
    EXPECT_FALSE(ic_core_evict_needed(b));
    free_batch(a);
    EXPECT_EQ(ic_pool_used(pool), 300 * kCs) << "twice the headroom free";
    EXPECT_EQ(ic_pool_victim(pool), nullptr);
    EXPECT_FALSE(ic_core_evict_needed(a));
    EXPECT_TRUE(store(b, 300, 1));

    /* A member that leaves gives its room back. */
    ic_core_free(a);
    EXPECT_EQ(ic_pool_members(pool), 1U);
    EXPECT_EQ(ic_pool_used(pool), 121 * kCs);
    ic_core_free(b);
    EXPECT_EQ(ic_pool_used(pool), 0U);
    ic_pool_free(pool);
}

/* A member bounded by its own cache-size too: whichever is tighter. */
TEST(Pool, AMembersOwnBoundStillHolds) {
    IcPool *pool = ic_pool_new(1000 * kCs);
    int node = 0;
    IcCore *a = member(pool, &node, 64 * kCs);
    uint64_t stored = 0;
    for (uint64_t c = 0; c < 100; c++) {
        stored += store(a, c, 1) ? 1 : 0;
    }
    EXPECT_EQ(stored, 64U);
    EXPECT_TRUE(ic_core_evict_needed(a)) << "its own bound";
    EXPECT_EQ(ic_pool_victim(pool), nullptr) << "the pool has room";
    ic_core_free(a);
    ic_pool_free(pool);
}

TEST(PoolDeathTest, FreeingAPoolWithMembersAborts) {
    IcPool *pool = ic_pool_new(100 * kCs);
    int node = 0;
    IcCore *a = member(pool, &node);
    EXPECT_DEATH(ic_pool_free(pool), "still has 1 members");
    ic_core_free(a);
    ic_pool_free(pool);
}

/*
 * Two members of one pool: one reads its working set again and again, the
 * other streams data nobody reads again (random reads over its whole
 * base).  Once the stream's policy has seen that it reuses little, the
 * stream is the member asked to free room, and it admits one miss in
 * sixteen: the working set stays cached.
 */
TEST(Pool, AStreamDoesNotPushOutAWorkingSet) {
    IcPool *pool = ic_pool_new(256 * kCs); /* headroom 8 clusters */
    int node_a = 0;
    int node_b = 0;
    IcCore *a = member(pool, &node_a);
    IcCore *b = member(pool, &node_b);
    /* Frees room as the glue does: the member the pool asks, each time. */
    const auto relieve = [&] {
        for (void *v; (v = ic_pool_victim(pool)) != nullptr;) {
            IcCore *asked = v == &node_a ? a : b;
            if (!ic_core_evict_needed(asked)) {
                break;
            }
            free_batch(asked);
        }
    };
    unsigned hits = 0;
    uint64_t streamed = 0;
    for (unsigned round = 0; round < 5; round++) {
        hits = 0;
        for (uint64_t c = 0; c < 200; c++) {
            IcSegment seg;
            ASSERT_EQ(ic_core_plan(a, c * kCs, kCs, &seg, 1), 1U);
            if (seg.kind == IC_SEG_HIT) {
                hits++;
            } else {
                unit::store_fetch(a, seg);
            }
            relieve();
            /* A new cluster of b's, in an order no scan filter follows. */
            store(b, (streamed++ * 389) % kClusters, 1);
            relieve();
        }
    }
    EXPECT_GE(hits, 196U) << "of the working set's 200 in the last round";
    EXPECT_TRUE(stats_of(b).reuse_low);
    EXPECT_FALSE(stats_of(a).reuse_low);
    EXPECT_LE(ic_pool_used(pool), 256 * kCs);
    ic_core_free(a);
    ic_core_free(b);
    ic_pool_free(pool);
}

/*
 * blockdev-reopen with another pool: what a member holds moves from one
 * pool to the other at once, and a member that leaves its pool without a
 * cache-size of its own is unbounded again.
 */
TEST(Pool, AMemberMovesToAnotherPoolWithWhatItHolds) {
    IcPool *p1 = ic_pool_new(100 * kCs);
    IcPool *p2 = ic_pool_new(40 * kCs); /* headroom 1 cluster */
    int node = 0;
    IcCore *a = member(p1, &node);
    for (uint64_t c = 0; c < 60; c++) {
        ASSERT_TRUE(store(a, c, 1));
    }
    EXPECT_EQ(ic_pool_used(p1), 60 * kCs);

    const IcSettings unbounded = bound_of(0);
    ASSERT_TRUE(ic_core_set_bound(a, &unbounded, p2, &node, nullptr, 0));
    EXPECT_EQ(ic_pool_members(p1), 0U);
    EXPECT_EQ(ic_pool_used(p1), 0U) << "its room given back";
    EXPECT_EQ(ic_pool_members(p2), 1U);
    EXPECT_EQ(ic_pool_used(p2), 60 * kCs) << "counted, beyond the size";
    EXPECT_EQ(ic_pool_victim(p2), &node) << "the new pool asks for room";
    EXPECT_TRUE(ic_core_evict_needed(a));
    EXPECT_FALSE(store(a, 100, 1)) << "no room in the new pool";
    free_batch(a);
    EXPECT_EQ(ic_pool_used(p2), 37 * kCs) << "at once, twice the headroom free";
    EXPECT_EQ(ic_pool_victim(p2), nullptr);
    EXPECT_EQ(stats_of(a).used_clusters * kCs, ic_pool_used(p2));

    /* Out of every pool, no cache-size: as large as the base again. */
    ASSERT_TRUE(ic_core_set_bound(a, &unbounded, nullptr, nullptr, nullptr, 0));
    EXPECT_EQ(ic_pool_members(p2), 0U);
    EXPECT_EQ(ic_pool_used(p2), 0U);
    EXPECT_EQ(stats_of(a).capacity_clusters, 0U);
    EXPECT_FALSE(ic_core_evict_needed(a));
    for (uint64_t c = 200; c < 300; c++) {
        EXPECT_TRUE(store(a, c, 1)) << "unbounded";
    }

    /* Into a pool again, now with a cache-size of its own. */
    const IcSettings own = bound_of(500 * kCs);
    ASSERT_TRUE(ic_core_set_bound(a, &own, p1, &node, nullptr, 0));
    EXPECT_EQ(ic_pool_used(p1), stats_of(a).used_clusters * kCs);
    EXPECT_EQ(stats_of(a).capacity_clusters, 500U);
    EXPECT_EQ(ic_pool_victim(p1), &node) << "holds more than p1's size";
    ic_core_free(a);
    EXPECT_EQ(ic_pool_members(p1), 0U);
    EXPECT_EQ(ic_pool_used(p1), 0U);
    ic_pool_free(p1);
    ic_pool_free(p2);
}

/* A new bound that cannot be allocated changes neither bound nor pool. */
TEST(Pool, AFailedBoundKeepsTheOldPool) {
    IcPool *pool = ic_pool_new(100 * kCs);
    int node = 0;
    IcCore *core = member(nullptr, nullptr); /* unbounded, in no pool */
    const IcSettings unbounded = bound_of(0);
    char why[128] = "";
    bool ok = true;
    {
        const unit::FailAllocationsFrom fail(
            1024); /* the policy, not the pool */
        ok = ic_core_set_bound(core, &unbounded, pool, &node, why, sizeof(why));
    }
    EXPECT_FALSE(ok);
    EXPECT_NE(std::string(why).find("cannot allocate"), std::string::npos)
        << why;
    EXPECT_EQ(ic_pool_members(pool), 0U) << "not a member";
    EXPECT_EQ(stats_of(core).capacity_clusters, 0U) << "still unbounded";
    ASSERT_TRUE(
        ic_core_set_bound(core, &unbounded, pool, &node, why, sizeof(why)))
        << why;
    EXPECT_EQ(ic_pool_members(pool), 1U) << "joins once it can";
    ic_core_free(core);
    ic_pool_free(pool);
}

} // namespace
