/*
 * Unit tests of intellicache-ctl trace: trace-event-get-state parsed and
 * shown.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "trace.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using icctl::JsonPtr;

TEST(CtlTrace, EventsSortedAndAligned) {
    std::string error;
    const JsonPtr reply = icctl::json_parse(
        R"([{"name": "intellicache_store", "state": "disabled"},
            {"name": "intellicache_open", "state": "enabled"},
            {"name": "nameless"}, 3,
            {"name": "intellicache_fetch_done", "state": "enabled"}])",
        error);
    ASSERT_TRUE(reply) << error;
    const auto events = icctl::parse_trace_events(reply.get());
    ASSERT_EQ(events.size(), 3U) << "entries without a state are skipped";
    EXPECT_EQ(icctl::trace_table(events),
              "intellicache_fetch_done  enabled\n"
              "intellicache_open        enabled\n"
              "intellicache_store       disabled\n");
    EXPECT_EQ(icctl::count_state(events, "enabled"), 2U);
    EXPECT_EQ(icctl::count_state(events, "unavailable"), 0U);
}

TEST(CtlTrace, NothingToShow) {
    EXPECT_TRUE(icctl::parse_trace_events(nullptr).empty());
    EXPECT_EQ(icctl::trace_table({}), "");
}

} // namespace
