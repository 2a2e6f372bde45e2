/*
 * Unit tests: the base's health (BaseHealth, ic_health_*) and the retry
 * schedule of misses (RetryPolicy, ic_miss_retry, ic_base_error_transient).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "ic_base_health.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

namespace {

using intellicache::BaseHealth;
using intellicache::RetryPolicy;

constexpr IcBaseState kStates[] = {IC_BASE_UP, IC_BASE_RETRYING, IC_BASE_DOWN};

/* The whole transition table, from every state. */
TEST(BaseHealth, Transitions) {
    struct Row {
        IcBaseEvent ev;
        IcBaseState from_up, from_retrying, from_down;
    };
    const Row rows[] = {
        {IC_BASE_READ_OK, IC_BASE_UP, IC_BASE_UP, IC_BASE_UP},
        {IC_BASE_READ_FAILED, IC_BASE_RETRYING, IC_BASE_RETRYING, IC_BASE_DOWN},
        {IC_BASE_READ_SLOW, IC_BASE_RETRYING, IC_BASE_RETRYING, IC_BASE_DOWN},
        {IC_BASE_GAVE_UP, IC_BASE_DOWN, IC_BASE_DOWN, IC_BASE_DOWN},
        {IC_BASE_DETACHED, IC_BASE_DOWN, IC_BASE_DOWN, IC_BASE_DOWN},
    };
    for (const Row &r : rows) {
        const IcBaseState want[] = {r.from_up, r.from_retrying, r.from_down};
        for (int i = 0; i < 3; i++) {
            BaseHealth h(kStates[i]);
            const bool changed = h.note(r.ev);
            EXPECT_EQ(h.state(), want[i]) << "event " << r.ev << " from "
                                          << ic_base_state_name(kStates[i]);
            EXPECT_EQ(changed, want[i] != kStates[i]);
        }
    }
}

/* The usual outage, end to end: fail, retry, give up, probe, come back. */
TEST(BaseHealth, OutageAndReturn) {
    BaseHealth h;
    EXPECT_EQ(h.state(), IC_BASE_UP);
    EXPECT_TRUE(h.note(IC_BASE_READ_FAILED));
    EXPECT_FALSE(h.note(IC_BASE_READ_FAILED)) << "one event per change";
    EXPECT_FALSE(h.fails_fast(20000)) << "RETRYING misses still wait";
    EXPECT_TRUE(h.note(IC_BASE_GAVE_UP));
    EXPECT_TRUE(h.fails_fast(20000));
    EXPECT_FALSE(h.fails_fast(0)) << "miss-timeout 0: no fast failure";
    EXPECT_FALSE(h.note(IC_BASE_READ_FAILED)) << "a failed probe";
    EXPECT_TRUE(h.note(IC_BASE_READ_OK)) << "a probe that answered";
    EXPECT_EQ(h.state(), IC_BASE_UP);
    EXPECT_FALSE(h.fails_fast(20000));
}

TEST(BaseHealth, TickSpotsSlowReads) {
    const BaseHealth h;
    IcHealthTick t = h.tick(10000, 10000 - IC_BASE_SLOW_MS + 1, false);
    EXPECT_FALSE(t.slow) << "not slow yet";
    EXPECT_FALSE(t.probe);
    t = h.tick(10000, 10000 - IC_BASE_SLOW_MS, false);
    EXPECT_TRUE(t.slow);
    EXPECT_FALSE(t.probe) << "UP: never a probe";
    EXPECT_EQ(h.state(), IC_BASE_UP) << "the glue notes READ_SLOW";
    EXPECT_FALSE(h.tick(10000, std::nullopt, false).slow) << "none pending";
    /* A clock that went backwards is not a slow read. */
    EXPECT_FALSE(h.tick(100, 5000, false).slow);
}

TEST(BaseHealth, TickProbesOnlyADownBaseWithNothingPending) {
    BaseHealth h(IC_BASE_DOWN);
    EXPECT_TRUE(h.tick(0, std::nullopt, false).probe);
    EXPECT_FALSE(h.tick(0, std::nullopt, true).probe) << "one probe at a time";
    EXPECT_FALSE(h.tick(0, 0, false).probe)
        << "a pending read will tell when the base is back";
    for (IcBaseState st : {IC_BASE_UP, IC_BASE_RETRYING}) {
        BaseHealth other(st);
        EXPECT_FALSE(other.tick(0, std::nullopt, false).probe);
    }
}

/* The timer ticks every 250 ms; a down base is probed once a second. */
TEST(BaseHealth, ProbesAreASecondApart) {
    BaseHealth h(IC_BASE_DOWN);
    ASSERT_TRUE(h.tick(5000, std::nullopt, false).probe);
    h.probe_started(5000);
    for (std::uint64_t t = 5000 + IC_HEALTH_TICK_MS;
         t < 5000 + IC_PROBE_INTERVAL_MS; t += IC_HEALTH_TICK_MS) {
        EXPECT_FALSE(h.tick(t, std::nullopt, false).probe) << "at " << t;
    }
    EXPECT_TRUE(h.tick(5000 + IC_PROBE_INTERVAL_MS, std::nullopt, false).probe);
}

TEST(BaseHealth, TimerNeeded) {
    EXPECT_FALSE(BaseHealth::timer_needed(IC_BASE_UP, false));
    EXPECT_TRUE(BaseHealth::timer_needed(IC_BASE_UP, true));
    EXPECT_TRUE(BaseHealth::timer_needed(IC_BASE_RETRYING, false));
    EXPECT_TRUE(BaseHealth::timer_needed(IC_BASE_DOWN, false));
}

TEST(RetryPolicy, TransientErrors) {
    for (int err :
         {EIO, ETIMEDOUT, ENOTCONN, ECONNRESET, ECONNREFUSED, ECONNABORTED,
          EPIPE, ESHUTDOWN, EHOSTUNREACH, EHOSTDOWN, ENETUNREACH, ENETDOWN,
          ENETRESET, ENOLINK, EAGAIN, EINTR, ENOMEM}) {
        EXPECT_TRUE(RetryPolicy::transient(err)) << err;
    }
    /* The base answered, and the answer will not change. */
    for (int err : {EINVAL, EPERM, EACCES, ENOSPC, EROFS, ESTALE, ENOENT,
                    ENOTSUP, EFBIG, 0}) {
        EXPECT_FALSE(RetryPolicy::transient(err)) << err;
    }
}

TEST(RetryPolicy, BackoffDoublesToTheCap) {
    const std::vector<std::uint64_t> want = {100, 200, 400, 800, 1000, 1000};
    for (unsigned a = 1; a <= want.size(); a++) {
        const auto d = RetryPolicy::delay_ms(EIO, a, 0, 600000);
        ASSERT_TRUE(d.has_value());
        EXPECT_EQ(*d, want[a - 1]) << "attempt " << a;
    }
    /* Huge attempt numbers neither overflow nor exceed the cap. */
    EXPECT_EQ(RetryPolicy::delay_ms(EIO, 1000, 0, 600000), IC_RETRY_MAX_MS);
    EXPECT_EQ(RetryPolicy::delay_ms(EIO, ~0U, 0, 600000), IC_RETRY_MAX_MS);
}

TEST(RetryPolicy, LastDelayEndsAtTheDeadline) {
    EXPECT_EQ(RetryPolicy::delay_ms(EIO, 5, 4950, 5000), 50U);
    EXPECT_EQ(RetryPolicy::delay_ms(EIO, 1, 4999, 5000), 1U);
    EXPECT_FALSE(RetryPolicy::delay_ms(EIO, 1, 5000, 5000).has_value());
    EXPECT_FALSE(RetryPolicy::delay_ms(EIO, 1, 7000, 5000).has_value());
}

TEST(RetryPolicy, NoRetry) {
    EXPECT_FALSE(RetryPolicy::delay_ms(EIO, 1, 0, 0).has_value())
        << "miss-timeout 0";
    EXPECT_FALSE(RetryPolicy::delay_ms(EINVAL, 1, 0, 5000).has_value());
    EXPECT_FALSE(RetryPolicy::delay_ms(EIO, 0, 0, 5000).has_value())
        << "attempts count from 1";
}

/* A whole schedule: the tries of a miss against a base that never answers. */
TEST(RetryPolicy, ScheduleSumsToTheTimeout) {
    std::uint64_t waited = 0;
    unsigned tries = 1;
    std::uint64_t delay = 0;
    while (ic_miss_retry(ECONNREFUSED, tries, waited, 5000, &delay)) {
        ASSERT_GT(delay, 0U);
        waited += delay;
        tries++;
        ASSERT_LT(tries, 100U);
    }
    EXPECT_EQ(waited, 5000U);
    /* 100+200+400+800 = 1500, then 1000 x 3 = 4500, then the last 500. */
    EXPECT_EQ(tries, 1 + 4 + 3 + 1U);
}

TEST(HealthCapi, CountersAndNames) {
    IcHealth *h = ic_health_new(IC_BASE_UP);
    ASSERT_NE(h, nullptr);
    IcBaseState old = IC_BASE_DOWN;
    EXPECT_TRUE(ic_health_note(h, IC_BASE_READ_FAILED, &old));
    EXPECT_EQ(old, IC_BASE_UP);
    EXPECT_EQ(ic_health_state(h), IC_BASE_RETRYING);
    EXPECT_FALSE(ic_health_note(h, IC_BASE_READ_SLOW, nullptr));
    for (int c = 0; c < IC_HEALTH_COUNTERS; c++) {
        EXPECT_EQ(ic_health_counter(h, static_cast<IcHealthCounter>(c)), 0U);
    }
    ic_health_count(h, IC_HEALTH_RETRIES);
    ic_health_count(h, IC_HEALTH_RETRIES);
    ic_health_count(h, IC_HEALTH_LATE_READS);
    EXPECT_EQ(ic_health_counter(h, IC_HEALTH_RETRIES), 2U);
    EXPECT_EQ(ic_health_counter(h, IC_HEALTH_LATE_READS), 1U);
    EXPECT_EQ(ic_health_counter(h, IC_HEALTH_PROBES), 0U);
    IcHealthTick t = ic_health_tick(h, 5000, false, 0, false);
    EXPECT_FALSE(t.slow);
    EXPECT_FALSE(t.probe);
    t = ic_health_tick(h, 5000, true, 3000, false);
    EXPECT_TRUE(t.slow);
    EXPECT_TRUE(ic_health_timer_needed(h, false));
    ic_health_free(h);

    EXPECT_EQ(std::string(ic_base_state_name(IC_BASE_UP)), "up");
    EXPECT_EQ(std::string(ic_base_state_name(IC_BASE_RETRYING)), "retrying");
    EXPECT_EQ(std::string(ic_base_state_name(IC_BASE_DOWN)), "down");
}

TEST(HealthCapiDeathTest, UnknownCounterAborts) {
    IcHealth *h = ic_health_new(IC_BASE_UP);
    EXPECT_DEATH(ic_health_count(h, IC_HEALTH_COUNTERS), "protocol error");
    ic_health_free(h);
}

} // namespace
