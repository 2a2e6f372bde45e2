/*
 * Unit tests of intellicache-ctl: latency histograms (QEMU's
 * BlockLatencyHistogramInfo): parsing, cumulative counts, deltas and
 * percentiles.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ctl_sample.hpp"

#include <gtest/gtest.h>

namespace {

using icctl::Histogram;
using icctl::StatsError;

Histogram sample() {
    Histogram h;
    h.boundaries_ns = {1000, 2000, 4000};
    h.bins = {10, 20, 30, 40};
    h.sum_ns = 123456;
    return h;
}

TEST(CtlHistogram, CountAndCumulative) {
    const Histogram h = sample();
    EXPECT_EQ(h.count(), 100U);
    EXPECT_EQ(h.cumulative(), (std::vector<std::uint64_t>{10, 30, 60, 100}));
}

TEST(CtlHistogram, QuantileInterpolatesWithinItsBin) {
    const Histogram h = sample();
    /* Rank 5 of 100 is half-way through bin 0, [0, 1000). */
    EXPECT_DOUBLE_EQ(*h.quantile_ns(0.05), 500.0);
    /* Rank 20: half-way through bin 1, [1000, 2000). */
    EXPECT_DOUBLE_EQ(*h.quantile_ns(0.20), 1500.0);
    EXPECT_DOUBLE_EQ(*h.quantile_ns(0.60), 4000.0);
    /* In the unbounded last bin: its lower boundary. */
    EXPECT_DOUBLE_EQ(*h.quantile_ns(0.99), 4000.0);
}

TEST(CtlHistogram, QuantileOfNothingIsNone) {
    Histogram h = sample();
    h.bins = {0, 0, 0, 0};
    EXPECT_FALSE(h.quantile_ns(0.5).has_value());
}

TEST(CtlHistogram, SinceSubtractsBinsAndSum) {
    const Histogram later = sample();
    Histogram earlier = sample();
    earlier.bins = {5, 20, 0, 40};
    earlier.sum_ns = 100000;
    const auto d = later.since(earlier);
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->bins, (std::vector<std::uint64_t>{5, 0, 30, 0}));
    EXPECT_EQ(d->sum_ns, 23456U);
}

TEST(CtlHistogram, SinceRefusesOtherBoundariesOrARestart) {
    const Histogram later = sample();
    Histogram other = sample();
    other.boundaries_ns = {1000, 2000, 8000};
    EXPECT_FALSE(later.since(other).has_value());
    Histogram bigger = sample();
    bigger.bins[0] = 11; /* counters went back: the node was reopened */
    EXPECT_FALSE(later.since(bigger).has_value());
}

TEST(CtlHistogram, ParsedFromTheNodeWithItsSum) {
    const auto nodes = ctltest::parse(ctltest::blockstats({ctltest::node_entry(
        "ic0", "base0",
        ctltest::driver_specific(
            R"(, "hit-latency": {"boundaries": [1000, 2000],
                 "bins": [1, 2, 3], "sum-ns": 9000},
               "miss-latency": {"boundaries": [1000], "bins": [4, 5]},
               "miss-latency-sum-ns": 77)"))}));
    ASSERT_EQ(nodes.size(), 1U);
    const auto &hs = nodes[0].histograms;
    ASSERT_EQ(hs.count("hit"), 1U);
    EXPECT_EQ(hs.at("hit").bins, (std::vector<std::uint64_t>{1, 2, 3}));
    EXPECT_EQ(hs.at("hit").sum_ns, 9000U);
    EXPECT_EQ(hs.at("miss").sum_ns, 77U);
    EXPECT_EQ(hs.count("fetch"), 0U);
}

TEST(CtlHistogram, MalformedHistogramsAreRefused) {
    for (const char *bad :
         {R"(, "hit-latency": {"boundaries": [1000], "bins": [1]})",
          R"(, "hit-latency": {"boundaries": [2000, 1000], "bins": [1, 2, 3]})",
          R"(, "hit-latency": {"boundaries": [1000], "bins": [1, -2]})",
          R"(, "hit-latency": {"bins": [1]})"}) {
        EXPECT_THROW(ctltest::parse(ctltest::blockstats({ctltest::node_entry(
                         "ic0", "base0", ctltest::driver_specific(bad))})),
                     StatsError)
            << bad;
    }
}

} // namespace
