/*
 * Unit tests: the max-inflight slots (FetchSlots, ic_core_slot_take,
 * ic_core_slot_put) and read-ahead admission.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "ic_core.hpp"
#include "ic_fetch_slots.hpp"
#include "unit_helpers.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <random>

namespace {

using intellicache::FetchSlots;
constexpr IcFetchKind kDemand = IC_FETCH_DEMAND;
constexpr IcFetchKind kAhead = IC_FETCH_READ_AHEAD;
constexpr IcFetchKind kPrefetch = IC_FETCH_PREFETCH;

TEST(FetchSlots, DemandTakesUpToTheLimitThenWaits) {
    FetchSlots s(3);
    EXPECT_TRUE(s.take(kDemand));
    EXPECT_TRUE(s.take(kDemand));
    EXPECT_TRUE(s.take(kDemand));
    EXPECT_EQ(s.busy(), 3U);
    EXPECT_FALSE(s.take(kDemand));
    EXPECT_FALSE(s.take(kDemand));
    EXPECT_EQ(s.waiting(), 2U);
    EXPECT_EQ(s.busy(), 3U) << "a waiter holds no slot";

    /* Each slot given back wakes exactly one waiter, which takes it. */
    EXPECT_TRUE(s.put());
    EXPECT_EQ(s.waiting(), 1U);
    EXPECT_TRUE(s.take(kDemand));
    EXPECT_TRUE(s.put());
    EXPECT_EQ(s.waiting(), 0U);
    EXPECT_TRUE(s.take(kDemand));
    EXPECT_FALSE(s.put()) << "nobody left to wake";
    EXPECT_FALSE(s.put());
    EXPECT_FALSE(s.put());
    EXPECT_EQ(s.busy(), 0U);
}

TEST(FetchSlots, ReadAheadUsesOnlyTheFirstHalf) {
    FetchSlots s(8);
    for (int i = 0; i < 4; i++) {
        EXPECT_TRUE(s.take(kAhead)) << i;
    }
    EXPECT_FALSE(s.take(kAhead)) << "4 of 8 busy: not fewer than half";
    EXPECT_EQ(s.waiting(), 0U) << "read-ahead never waits";
    /* Demand reads still get the other half. */
    for (int i = 0; i < 4; i++) {
        EXPECT_TRUE(s.take(kDemand)) << i;
    }
    EXPECT_FALSE(s.take(kDemand));
    EXPECT_EQ(s.busy(), 8U);
}

TEST(FetchSlots, ReadAheadNeverWhileADemandReadWaits) {
    FetchSlots s(2);
    EXPECT_TRUE(s.take(kDemand));
    EXPECT_TRUE(s.take(kDemand));
    EXPECT_FALSE(s.take(kDemand)); /* waits */
    /* Raised limit: 2 busy of 16 is well under half, but a demand read
     * waits, and read-ahead must not take the slot it needs. */
    s.set_limit(16);
    EXPECT_FALSE(s.take(kAhead));
    EXPECT_EQ(s.waiting(), 1U);
    EXPECT_EQ(s.busy(), 2U);
    /* Once the waiter is woken (no longer counted), read-ahead may go. */
    EXPECT_TRUE(s.put());
    EXPECT_EQ(s.waiting(), 0U);
    EXPECT_TRUE(s.take(kAhead));
}

TEST(FetchSlots, EveryPutWakesOneWhileAnyoneWaits) {
    FetchSlots s(4);
    for (int i = 0; i < 4; i++) {
        ASSERT_TRUE(s.take(kDemand));
    }
    for (int i = 0; i < 3; i++) {
        EXPECT_FALSE(s.take(kDemand));
    }
    EXPECT_EQ(s.waiting(), 3U);
    /* Three slots come back before any woken read retries: three wakes. */
    EXPECT_TRUE(s.put());
    EXPECT_TRUE(s.put());
    EXPECT_TRUE(s.put());
    EXPECT_EQ(s.waiting(), 0U);
    EXPECT_FALSE(s.put()) << "nobody left to wake";
    EXPECT_EQ(s.busy(), 0U);
    for (int i = 0; i < 3; i++) {
        EXPECT_TRUE(s.take(kDemand)) << "each woken read finds its slot";
    }
}

TEST(FetchSlots, LimitOneMeansNoReadAheadAtAll) {
    FetchSlots s(1);
    EXPECT_FALSE(s.take(kAhead)) << "idle, but half of 1 is 0";
    EXPECT_TRUE(s.take(kDemand));
    EXPECT_FALSE(s.take(kAhead));
    EXPECT_FALSE(s.put());
    EXPECT_FALSE(s.take(kAhead));
    EXPECT_EQ(s.busy(), 0U);
    /* Limits 2 and 3: one read-ahead, only while idle. */
    for (const uint32_t limit : {2U, 3U}) {
        FetchSlots t(limit);
        EXPECT_TRUE(t.take(kAhead));
        EXPECT_FALSE(t.take(kAhead));
    }
}

TEST(FetchSlots, LowerLimitWhileBusyNeverHandsOutMore) {
    FetchSlots s(4);
    for (int i = 0; i < 4; i++) {
        ASSERT_TRUE(s.take(kDemand));
    }
    EXPECT_FALSE(s.take(kDemand));
    EXPECT_FALSE(s.take(kDemand));
    s.set_limit(2);
    /* Busy 4 > 2: slots coming back wake nobody until one is free. */
    EXPECT_FALSE(s.put()); /* 3 busy */
    EXPECT_FALSE(s.put()); /* 2 busy */
    EXPECT_EQ(s.waiting(), 2U);
    EXPECT_FALSE(s.take(kDemand)) << "2 busy of 2: a newcomer waits too";
    EXPECT_EQ(s.waiting(), 3U);
    EXPECT_TRUE(s.put()); /* 1 busy: one free, one woken */
    EXPECT_TRUE(s.take(kDemand));
    EXPECT_EQ(s.busy(), 2U);
    EXPECT_FALSE(s.take(kDemand)) << "never more than the new limit";
    EXPECT_EQ(s.waiting(), 3U);
    EXPECT_FALSE(s.take(kAhead));
}

TEST(FetchSlots, RaiseLimitWhileWaiting) {
    FetchSlots s(1);
    ASSERT_TRUE(s.take(kDemand));
    EXPECT_FALSE(s.take(kDemand));
    EXPECT_FALSE(s.take(kDemand));
    s.set_limit(3);
    /* New reads use the new slots at once... */
    EXPECT_TRUE(s.take(kDemand));
    EXPECT_EQ(s.busy(), 2U);
    /* ...and each slot given back wakes one of the waiters. */
    EXPECT_TRUE(s.put());
    EXPECT_TRUE(s.put());
    EXPECT_EQ(s.waiting(), 0U);
    EXPECT_TRUE(s.take(kDemand));
    EXPECT_TRUE(s.take(kDemand));
    EXPECT_EQ(s.busy(), 2U);
}

/*
 * A newcomer may take the slot freed for a woken waiter; the waiter waits
 * again and the next slot given back wakes it: nobody is forgotten.
 */
TEST(FetchSlots, NewcomerBeforeTheWokenWaiter) {
    FetchSlots s(1);
    ASSERT_TRUE(s.take(kDemand));  /* A */
    EXPECT_FALSE(s.take(kDemand)); /* B waits */
    EXPECT_TRUE(s.put());          /* A done, B woken */
    EXPECT_TRUE(s.take(kDemand));  /* C arrives first */
    EXPECT_FALSE(s.take(kDemand)); /* B retries, waits again */
    EXPECT_EQ(s.waiting(), 1U);
    EXPECT_TRUE(s.put()); /* C done: B woken */
    EXPECT_TRUE(s.take(kDemand));
    EXPECT_FALSE(s.put());
}

/* A simulation of the glue: coroutines taking slots, waiting in FIFO order,
 * woken by put(); the limit changes at random.  Checks that busy never
 * exceeds the limit in force when a slot was taken, that every demand read
 * eventually runs, and that the counts match the simulation. */
TEST(FetchSlots, RandomScheduleNeverStarvesAndNeverExceeds) {
    std::mt19937_64 rng(5);
    FetchSlots s(4);
    uint32_t limit = 4;
    uint32_t running = 0;
    std::deque<int> queue; /* waiting demand reads, in order */
    int woken = 0;         /* woken, not yet retried */
    int next = 0;
    int done = 0;
    for (int step = 0; step < 100000 && !HasFailure(); step++) {
        const uint64_t r = rng() % 100;
        if (r < 30) { /* a new demand read */
            if (s.take(kDemand)) {
                running++;
                ASSERT_LE(running, limit);
            } else {
                queue.push_back(next);
            }
            next++;
        } else if (r < 40) {
            const uint32_t waiting = s.waiting();
            if (s.take(kAhead)) {
                ASSERT_EQ(waiting, 0U) << "read-ahead past a waiter";
                ASSERT_LT(running, limit / 2);
                running++;
            }
        } else if (r < 80 && running > 0) {
            running--;
            done++;
            if (s.put()) {
                ASSERT_FALSE(queue.empty());
                queue.pop_front();
                woken++;
            }
        } else if (r < 95 && woken > 0) { /* a woken read retries */
            woken--;
            if (s.take(kDemand)) {
                running++;
                ASSERT_LE(running, limit);
            } else {
                queue.push_back(-1);
            }
        } else if (r >= 98) {
            limit = 1 + rng() % 8;
            s.set_limit(limit);
        }
        ASSERT_EQ(s.busy(), running);
        ASSERT_EQ(s.waiting(), queue.size());
        ASSERT_FALSE(running == 0 && woken == 0 && !queue.empty())
            << "waiters with nothing running and nobody woken: stuck";
    }
    EXPECT_GT(done, 1000);
}

/*
 * Guests first: within IC_GUEST_QUIET_MS of a guest's miss, prefetch goes
 * only when the base has nothing else in flight; after, as before.
 */
TEST(FetchSlots, PrefetchYieldsWhileGuestsMiss) {
    FetchSlots slots(16);
    EXPECT_FALSE(slots.guests_active(1000)) << "no guest missed yet";
    /* Quiet guests: prefetch fills three quarters of the slots. */
    for (int i = 0; i < 12; i++) {
        ASSERT_TRUE(slots.take_prefetch(1000)) << i;
    }
    EXPECT_FALSE(slots.take_prefetch(1000));
    for (int i = 0; i < 12; i++) {
        slots.put();
    }

    ASSERT_TRUE(slots.take(kDemand));
    slots.note_guest_miss(2000);
    EXPECT_TRUE(slots.guests_active(2000 + IC_GUEST_QUIET_MS - 1));
    EXPECT_FALSE(slots.take_prefetch(2001)) << "a guest's miss is in flight";
    slots.put();
    EXPECT_TRUE(slots.take_prefetch(2002)) << "the base is idle";
    EXPECT_FALSE(slots.take_prefetch(2003)) << "one at a time";
    slots.put();
    /* Quiet again once IC_GUEST_QUIET_MS passed without a miss. */
    const uint64_t quiet = 2000 + IC_GUEST_QUIET_MS;
    EXPECT_FALSE(slots.guests_active(quiet));
    EXPECT_TRUE(slots.take_prefetch(quiet));
    EXPECT_TRUE(slots.take_prefetch(quiet));
}

/* The core hands a prefetch a smaller piece while guests miss. */
TEST(FetchSlots, PrefetchPiecesShrinkWhileGuestsMiss) {
    IcGeometry g;
    ASSERT_TRUE(ic_geometry_init(&g, 64 * unit::kMiB, 4096, nullptr, 0));
    IcCore *core = ic_core_new(&g, 1, unit::kMiB, 16, nullptr, 0);
    ASSERT_NE(core, nullptr);
    uint64_t max_bytes = 0;
    ASSERT_TRUE(ic_core_prefetch_slot_take(core, 100, &max_bytes));
    EXPECT_EQ(max_bytes, unit::kMiB);
    ic_core_slot_put(core);
    ic_core_note_guest_miss(core, 200);
    ASSERT_TRUE(ic_core_prefetch_slot_take(core, 300, &max_bytes));
    EXPECT_EQ(max_bytes, IC_GUEST_PREFETCH_BYTES);
    ic_core_slot_put(core);
    ic_core_free(core);
}

TEST(FetchSlots, PutWithoutTakeAborts) {
    FetchSlots s(2);
    EXPECT_DEATH(s.put(), "protocol error: ic_core_slot_put\\(\\) without "
                          "a slot taken");
    EXPECT_TRUE(s.take(kDemand));
    EXPECT_FALSE(s.put());
    EXPECT_DEATH(s.put(), "without a slot taken");
}

TEST(FetchSlots, PrefetchLeavesAQuarterForMisses) {
    FetchSlots s(16);
    for (int i = 0; i < 12; i++) {
        EXPECT_TRUE(s.take(kPrefetch)) << i;
    }
    EXPECT_FALSE(s.take(kPrefetch)) << "12 of 16: 4 stay free for misses";
    EXPECT_EQ(s.waiting(), 0U) << "prefetch never waits";
    /* Misses that come meanwhile find a slot at once. */
    for (int i = 0; i < 4; i++) {
        EXPECT_TRUE(s.take(kDemand)) << i;
    }
    EXPECT_EQ(s.busy(), 16U);
}

TEST(FetchSlots, PrefetchKeepsOneFreeWithSmallLimits) {
    for (std::uint32_t limit = 2; limit < 8; limit++) {
        FetchSlots s(limit);
        std::uint32_t taken = 0;
        while (s.take(kPrefetch)) {
            taken++;
        }
        EXPECT_EQ(taken, limit - 1) << "limit " << limit;
        EXPECT_TRUE(s.take(kDemand)) << "limit " << limit;
    }
    /* With one slot, prefetch may use it when free, or it never runs. */
    FetchSlots one(1);
    EXPECT_TRUE(one.take(kPrefetch));
    EXPECT_FALSE(one.take(kPrefetch));
    EXPECT_FALSE(one.take(kDemand)); /* waits for the prefetch */
    EXPECT_TRUE(one.put()) << "the miss is woken";
    EXPECT_TRUE(one.take(kDemand));
    EXPECT_FALSE(one.take(kPrefetch));
}

TEST(FetchSlots, PrefetchNeverWhileADemandReadWaits) {
    FetchSlots s(4);
    for (int i = 0; i < 4; i++) {
        EXPECT_TRUE(s.take(kDemand));
    }
    EXPECT_FALSE(s.take(kDemand)); /* waits */
    s.set_limit(64);
    EXPECT_FALSE(s.take(kPrefetch)) << "a miss waits: it goes first";
    EXPECT_TRUE(s.put());
    EXPECT_TRUE(s.take(kDemand)) << "the woken miss";
    EXPECT_TRUE(s.take(kPrefetch)) << "nobody waits any more";
}

TEST(FetchSlots, PrefetchFollowsALowerLimit) {
    FetchSlots s(16);
    for (int i = 0; i < 12; i++) {
        EXPECT_TRUE(s.take(kPrefetch));
    }
    s.set_limit(4);
    EXPECT_EQ(s.prefetch_limit(), 3U);
    EXPECT_FALSE(s.take(kPrefetch));
    for (int i = 0; i < 9; i++) {
        EXPECT_FALSE(s.put());
    }
    EXPECT_FALSE(s.take(kPrefetch)) << "3 busy of 3 for prefetch";
    EXPECT_FALSE(s.put());
    EXPECT_TRUE(s.take(kPrefetch));
}

/* Through the core: the limit given to ic_core_new(), and settings. */
TEST(FetchSlots, CoreAppliesMaxInflight) {
    IcGeometry g;
    ASSERT_TRUE(ic_geometry_init(&g, 64 << 20, 65536, nullptr, 0));
    IcCore *core = ic_core_new(&g, 1, 1 << 20, 2, nullptr, 0);
    ASSERT_NE(core, nullptr);
    EXPECT_TRUE(ic_core_slot_take(core, IC_FETCH_READ_AHEAD));
    EXPECT_TRUE(ic_core_slot_take(core, IC_FETCH_DEMAND));
    EXPECT_FALSE(ic_core_slot_take(core, IC_FETCH_DEMAND));
    /* While slots are busy, max-inflight goes up to 4 and back to 1. */
    IcSettings set{};
    set.cluster_size = 65536;
    set.max_inflight = 4;
    set.max_fetch = 1 << 20;
    ic_core_apply_settings(core, &set);
    EXPECT_TRUE(ic_core_slot_take(core, IC_FETCH_DEMAND)) << "3 of 4";
    set.max_inflight = 1;
    ic_core_apply_settings(core, &set);
    EXPECT_FALSE(ic_core_slot_put(core)) << "2 busy of 1: nobody woken";
    EXPECT_FALSE(ic_core_slot_put(core)) << "1 busy of 1";
    EXPECT_TRUE(ic_core_slot_put(core)) << "free: the waiter is woken";
    EXPECT_TRUE(ic_core_slot_take(core, IC_FETCH_DEMAND));
    EXPECT_FALSE(ic_core_slot_take(core, IC_FETCH_READ_AHEAD));
    EXPECT_FALSE(ic_core_slot_put(core));
    EXPECT_FALSE(ic_core_slot_take(core, IC_FETCH_READ_AHEAD))
        << "limit 1: never any read-ahead";
    ic_core_free(core);
}

} // namespace
