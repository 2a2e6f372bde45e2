/*
 * Unit tests of intellicache-ctl: status as a table and as JSON, rates,
 * and top's frame.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ctl_sample.hpp"
#include "status_view.hpp"

#include <gtest/gtest.h>

namespace {

using ctltest::lines_of;

using icctl::NodeRates;
using icctl::NodeView;
using icctl::StatusRenderer;
using icctl::Table;

std::vector<NodeView> views(const std::vector<std::string> &entries) {
    std::vector<NodeView> out;
    for (auto &n : ctltest::parse(ctltest::blockstats(entries))) {
        out.push_back({std::move(n), std::nullopt});
    }
    return out;
}

TEST(CtlTable, ColumnsAreAligned) {
    Table t({"A", "LONGER"});
    t.add_row({"xxxx", "y"});
    EXPECT_EQ(t.render(), "A     LONGER\nxxxx  y\n");
}

TEST(CtlTable, HumanBytes) {
    EXPECT_EQ(icctl::human_bytes(0), "0B");
    EXPECT_EQ(icctl::human_bytes(1023), "1023B");
    EXPECT_EQ(icctl::human_bytes(4096), "4.0K");
    EXPECT_EQ(icctl::human_bytes(1.5 * 1024 * 1024), "1.5M");
    EXPECT_EQ(icctl::human_bytes(3.0 * 1024 * 1024 * 1024 * 1024), "3.0T");
}

TEST(CtlStatus, TableOfTwoNodes) {
    const auto v =
        views({ctltest::node_entry("ic0", "base0", ctltest::driver_specific()),
               ctltest::node_entry(
                   "ic1", "",
                   ctltest::driver_specific(
                       R"(, "cache-size": 2097152, "used-bytes": 1048576)"))});
    const auto lines = lines_of(StatusRenderer::table(v));
    ASSERT_EQ(lines.size(), 3U);
    EXPECT_EQ(lines[0].rfind(
                  "NODE  BASE   SIZE  STATE    BASE-STATE  CLUSTER  FILL", 0),
              0U)
        << lines[0];
    /* 512 of 1025 clusters; 3000 of 4000 bytes read from the cache. */
    EXPECT_NE(lines[1].find("512/1025 (50.0%)"), std::string::npos) << lines[1];
    EXPECT_NE(lines[1].find("75.0%"), std::string::npos) << lines[1];
    EXPECT_NE(lines[1].find("base0"), std::string::npos);
    /* An unbounded cache has no USED; a node without base shows "-". */
    EXPECT_NE(lines[2].find("1.0M/2.0M"), std::string::npos) << lines[2];
    EXPECT_EQ(lines[2].rfind("ic1   -      -     caching", 0), 0U) << lines[2];
    EXPECT_EQ(lines[0].find("READ/s"), std::string::npos);
}

/* A pool member without a cache-size of its own: bounded by the pool. */
TEST(CtlStatus, PoolMemberUsedHasThePoolAsBound) {
    const auto v = views({ctltest::node_entry(
        "ic0", "base0",
        ctltest::driver_specific(R"(, "used-bytes": 1048576)"))});
    const auto lines = lines_of(StatusRenderer::table(v));
    ASSERT_EQ(lines.size(), 2U);
    EXPECT_NE(lines[1].find("1.0M/pool"), std::string::npos) << lines[1];
}

TEST(CtlStatus, BaseSizesFromNamedNodes) {
    auto nodes = ctltest::parse(ctltest::blockstats(
        {ctltest::node_entry("ic0", "base0", ctltest::driver_specific()),
         ctltest::node_entry("ic1", "base1", ctltest::driver_specific())}));
    std::string error;
    icctl::JsonPtr named = icctl::json_parse(
        R"([{"node-name": "base0", "image": {"virtual-size": 1}},
            {"node-name": "ic0", "image": {"virtual-size": 4194816,
              "format-specific": {"type": "intellicache",
                                  "data": {"base-size": 4194304}}}},
            {"node-name": "ic1", "image": {"virtual-size": 4194816}}])",
        error);
    ASSERT_TRUE(named) << error;
    icctl::add_base_sizes(nodes, named.get());
    EXPECT_EQ(nodes[0].base_size, 4194304U);
    EXPECT_EQ(nodes[1].base_size, 4194816U);
    std::vector<NodeView> v = {{nodes[0], std::nullopt}};
    EXPECT_NE(StatusRenderer::table(v).find("base0  4.0M  caching"),
              std::string::npos);
}

TEST(CtlStatus, RatesFromTwoSamples) {
    auto first = ctltest::parse(ctltest::blockstats(
        {ctltest::node_entry("ic0", "base0", ctltest::driver_specific())}));
    std::string later = ctltest::driver_specific();
    later.replace(later.find("\"hit-bytes\": 3000"), 17, "\"hit-bytes\": 5048");
    auto second = ctltest::parse(
        ctltest::blockstats({ctltest::node_entry("ic0", "base0", later)}));
    const NodeRates r = NodeRates::between(first[0], second[0], 2.0);
    EXPECT_DOUBLE_EQ(r.hit_bytes, 1024.0);
    EXPECT_DOUBLE_EQ(r.read_bytes, 1024.0);
    EXPECT_DOUBLE_EQ(r.miss_bytes, 0.0);
    /* Counters that went back (a reopened node) give no negative rate. */
    const NodeRates back = NodeRates::between(second[0], first[0], 2.0);
    EXPECT_DOUBLE_EQ(back.hit_bytes, 0.0);

    std::vector<NodeView> v = {{second[0], r}};
    const auto lines = lines_of(StatusRenderer::table(v));
    for (const char *column : {"READ/s", "HIT/s", "BASE/s", "STORE/s"}) {
        EXPECT_NE(lines[0].find(column), std::string::npos) << column;
    }
    EXPECT_NE(lines[1].find("1.0K/s"), std::string::npos) << lines[1];
}

TEST(CtlStatus, JsonCarriesEveryCounter) {
    const auto v = views({ctltest::node_entry(
        "ic0", "base0",
        ctltest::driver_specific(R"(, "hit-ahead-bytes": 7)"))});
    std::string error;
    icctl::JsonPtr j = icctl::json_parse(StatusRenderer::json(v), error);
    ASSERT_TRUE(j) << error;
    json_object *nodes = icctl::json_member(j.get(), "nodes");
    ASSERT_EQ(json_object_array_length(nodes), 1U);
    json_object *n = json_object_array_get_idx(nodes, 0);
    EXPECT_EQ(icctl::json_string(n, "node"), "ic0");
    EXPECT_EQ(icctl::json_string(n, "base-node"), "base0");
    EXPECT_EQ(icctl::json_string(n, "state"), "caching");
    EXPECT_EQ(icctl::json_u64(n, "cluster-count"), 1025U);
    EXPECT_DOUBLE_EQ(json_object_get_double(icctl::json_member(n, "hit-ratio")),
                     0.75);
    json_object *c = icctl::json_member(n, "counters");
    for (std::string_view name : icctl::kCounterNames) {
        EXPECT_TRUE(icctl::json_u64(c, std::string(name).c_str()).has_value())
            << name;
    }
    EXPECT_EQ(icctl::json_u64(c, "hit-ahead-bytes"), 7U);
    EXPECT_EQ(icctl::json_member(n, "rates-per-second"), nullptr);
    EXPECT_EQ(icctl::json_member(n, "latency"), nullptr);
}

TEST(CtlStatus, JsonCarriesLatencyPercentiles) {
    const auto v = views({ctltest::node_entry(
        "ic0", "base0",
        ctltest::driver_specific(
            R"(, "miss-latency": {"boundaries": [1000, 2000], "bins": [0, 10, 0], "sum-ns": 15000})"))});
    std::string error;
    icctl::JsonPtr j = icctl::json_parse(StatusRenderer::json(v), error);
    ASSERT_TRUE(j) << error;
    json_object *n =
        json_object_array_get_idx(icctl::json_member(j.get(), "nodes"), 0);
    json_object *miss =
        icctl::json_member(icctl::json_member(n, "latency"), "miss");
    EXPECT_EQ(icctl::json_u64(miss, "count"), 10U);
    EXPECT_EQ(icctl::json_u64(miss, "sum-ns"), 15000U);
    EXPECT_DOUBLE_EQ(json_object_get_double(icctl::json_member(miss, "p50-ns")),
                     1500.0);
}

TEST(CtlStatus, MissingRequiredMemberNamesNodeAndMember) {
    try {
        ctltest::parse(ctltest::blockstats({ctltest::node_entry(
            "ic7", "",
            R"({"driver": "intellicache", "cluster-size": 4096})")}));
        FAIL() << "no exception";
    } catch (const icctl::StatsError &e) {
        EXPECT_STREQ(e.what(), "node ic7: its statistics lack 'state'");
    }
}

TEST(CtlTop, FrameShowsPercentilesOfTheInterval) {
    auto first = ctltest::parse(ctltest::blockstats({ctltest::node_entry(
        "ic0", "base0",
        ctltest::driver_specific(
            R"(, "hit-latency": {"boundaries": [1000, 2000], "bins": [0, 0, 0], "sum-ns": 0})"))}));
    auto second = ctltest::parse(ctltest::blockstats({ctltest::node_entry(
        "ic0", "base0",
        ctltest::driver_specific(
            R"(, "hit-latency": {"boundaries": [1000, 2000], "bins": [0, 100, 0], "sum-ns": 150000})"))}));
    std::vector<NodeView> v = {
        {second[0], NodeRates::between(first[0], second[0], 1.0)}};
    const std::string frame = icctl::TopRenderer::frame(v, 1.0);
    /* p50 of 100 reads in [1 us, 2 us): 1.5 us; p99: 1.99 us. */
    EXPECT_NE(frame.find("1.5us/2.0us"), std::string::npos) << frame;
    EXPECT_EQ(icctl::TopRenderer::latency(std::nullopt), "-");
    EXPECT_EQ(icctl::TopRenderer::latency(850), "850ns");
    EXPECT_EQ(icctl::TopRenderer::latency(3.4e6), "3.4ms");
    EXPECT_EQ(icctl::TopRenderer::latency(1.25e9), "1.25s");
}

} // namespace
