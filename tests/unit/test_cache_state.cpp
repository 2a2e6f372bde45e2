/*
 * Unit tests: the cache's state (CacheState, ic_core_cache_state,
 * ic_core_cache_failed, ic_core_set_active).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "ic_cache_state.hpp"

#include <gtest/gtest.h>

namespace {

using intellicache::CacheState;

TEST(CacheState, StartsCachingAndActive) {
    const CacheState s;
    EXPECT_EQ(s.state(), IC_CACHE_CACHING);
    EXPECT_TRUE(s.caching());
    EXPECT_TRUE(s.active());
}

/* Every combination of the three facts, in every order of the events. */
TEST(CacheState, Precedence) {
    for (int bits = 0; bits < 8; bits++) {
        const bool bypassed = (bits & 1) != 0;
        const bool inactive = (bits & 2) != 0;
        const bool stopped = (bits & 4) != 0;
        const IcCacheState want = bypassed   ? IC_CACHE_BYPASSED
                                  : inactive ? IC_CACHE_INACTIVE
                                  : stopped  ? IC_CACHE_STOPPED
                                             : IC_CACHE_CACHING;
        for (int order = 0; order < 2; order++) {
            CacheState s;
            if (order == 0) {
                if (bypassed) {
                    s.failed(false);
                }
                if (inactive) {
                    s.set_active(false);
                }
                if (stopped) {
                    s.failed(true);
                }
            } else {
                if (stopped) {
                    s.failed(true);
                }
                if (inactive) {
                    s.set_active(false);
                }
                if (bypassed) {
                    s.failed(false);
                }
            }
            EXPECT_EQ(s.state(), want) << "bits " << bits << " order " << order;
            EXPECT_EQ(s.caching(), want == IC_CACHE_CACHING);
            EXPECT_EQ(s.active(), !inactive);
        }
    }
}

TEST(CacheState, FailedReportsOnlyVisibleChanges) {
    CacheState s;
    EXPECT_TRUE(s.failed(true)) << "CACHING -> STOPPED";
    EXPECT_FALSE(s.failed(true)) << "already stopped: warn once";
    EXPECT_TRUE(s.failed(false)) << "STOPPED -> BYPASSED";
    EXPECT_FALSE(s.failed(false));
    EXPECT_FALSE(s.failed(true)) << "bypassed hides a later write failure";
    EXPECT_EQ(s.state(), IC_CACHE_BYPASSED);
}

TEST(CacheState, FailuresOutliveActivation) {
    CacheState s;
    s.set_active(false);
    EXPECT_FALSE(s.failed(true)) << "INACTIVE hides STOPPED";
    EXPECT_EQ(s.state(), IC_CACHE_INACTIVE);
    s.set_active(true);
    EXPECT_EQ(s.state(), IC_CACHE_STOPPED) << "not CACHING again";
    EXPECT_TRUE(s.failed(false));
    s.set_active(false);
    s.set_active(true);
    EXPECT_EQ(s.state(), IC_CACHE_BYPASSED);
}

TEST(CacheState, InactiveThenReadFailureIsAVisibleChange) {
    CacheState s;
    s.set_active(false);
    EXPECT_TRUE(s.failed(false)) << "INACTIVE -> BYPASSED";
}

TEST(CacheState, ThroughTheCApi) {
    IcGeometry g;
    ASSERT_TRUE(ic_geometry_init(&g, 1 << 20, 4096, nullptr, 0));
    IcCore *core = ic_core_new(&g, 1, IC_DEFAULT_MAX_FETCH, 4, nullptr, 0);
    ASSERT_NE(core, nullptr);
    EXPECT_EQ(ic_core_cache_state(core), IC_CACHE_CACHING);
    ic_core_set_active(core, false);
    EXPECT_EQ(ic_core_cache_state(core), IC_CACHE_INACTIVE);
    ic_core_set_active(core, false); /* idempotent */
    ic_core_set_active(core, true);
    ic_core_set_active(core, true);
    EXPECT_EQ(ic_core_cache_state(core), IC_CACHE_CACHING);
    EXPECT_TRUE(ic_core_cache_failed(core, true));
    EXPECT_EQ(ic_core_cache_state(core), IC_CACHE_STOPPED);
    EXPECT_TRUE(ic_core_cache_failed(core, false));
    EXPECT_EQ(ic_core_cache_state(core), IC_CACHE_BYPASSED);
    ic_core_free(core);
}

} // namespace
