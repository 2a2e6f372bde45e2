/*
 * Unit tests of intellicache-ctl: the Prometheus text exposition of
 * parsed node statistics.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ctl_sample.hpp"
#include "prometheus.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>

namespace {

using ctltest::lines_of;

using icctl::PrometheusRenderer;

bool has_line(const std::string &text, const std::string &line) {
    for (const std::string &l : lines_of(text)) {
        if (l == line) {
            return true;
        }
    }
    return false;
}

std::string render(const std::string &extra = "",
                   const std::string &second = "") {
    std::vector<std::string> nodes = {
        ctltest::node_entry("ic0", "base0", ctltest::driver_specific(extra))};
    if (!second.empty()) {
        nodes.push_back(second);
    }
    return PrometheusRenderer::render(
        ctltest::parse(ctltest::blockstats(nodes)));
}

TEST(CtlPrometheus, EveryFamilyHasHelpAndTypeOnceBeforeItsSamples) {
    const std::string text = render(
        R"(, "hit-latency": {"boundaries": [1000], "bins": [1, 2], "sum-ns": 5})",
        ctltest::node_entry("ic1", "", ctltest::driver_specific()));
    std::map<std::string, std::string> type_of;
    std::set<std::string> helped;
    for (const std::string &l : lines_of(text)) {
        ASSERT_FALSE(l.empty());
        std::istringstream in(l);
        if (l.rfind("# HELP ", 0) == 0) {
            std::string hash, kw, name;
            in >> hash >> kw >> name;
            EXPECT_TRUE(helped.insert(name).second) << "two HELP for " << name;
            continue;
        }
        if (l.rfind("# TYPE ", 0) == 0) {
            std::string hash, kw, name, type;
            in >> hash >> kw >> name >> type;
            EXPECT_TRUE(helped.count(name)) << "TYPE before HELP: " << name;
            EXPECT_TRUE(type_of.emplace(name, type).second) << name;
            if (type == "counter") {
                EXPECT_TRUE(name.size() > 6 &&
                            name.substr(name.size() - 6) == "_total")
                    << name;
            } else {
                EXPECT_EQ(name.find("_total"), std::string::npos) << name;
            }
            EXPECT_EQ(name.rfind("intellicache_", 0), 0U) << name;
            continue;
        }
        const std::string series = l.substr(0, l.find('{'));
        bool known = type_of.count(series) != 0;
        for (const char *suffix : {"_bucket", "_sum", "_count"}) {
            const std::string s(suffix);
            if (!known && series.size() > s.size() &&
                series.substr(series.size() - s.size()) == s) {
                const std::string base =
                    series.substr(0, series.size() - s.size());
                known = type_of.count(base) && type_of[base] == "histogram";
            }
        }
        EXPECT_TRUE(known) << "sample without TYPE: " << l;
    }
}

TEST(CtlPrometheus, ReadBytesBySource) {
    const std::string without = render();
    EXPECT_TRUE(has_line(
        without,
        R"(intellicache_read_bytes_total{node="ic0",source="cache"} 3000)"));
    /* base: miss-bytes + wait-bytes */
    EXPECT_TRUE(has_line(
        without,
        R"(intellicache_read_bytes_total{node="ic0",source="base"} 1000)"));
    EXPECT_EQ(without.find("source=\"ahead\""), std::string::npos);

    const std::string with = render(R"(, "hit-ahead-bytes": 1200)");
    EXPECT_TRUE(has_line(
        with,
        R"(intellicache_read_bytes_total{node="ic0",source="cache"} 1800)"));
    EXPECT_TRUE(has_line(
        with,
        R"(intellicache_read_bytes_total{node="ic0",source="ahead"} 1200)"));
}

TEST(CtlPrometheus, CountersGaugesAndStates) {
    const std::string text =
        render(R"(, "cache-size": 8388608, "used-bytes": 4096)");
    EXPECT_TRUE(
        has_line(text, R"(intellicache_fetch_errors_total{node="ic0"} 2)"));
    EXPECT_TRUE(has_line(
        text, R"(intellicache_fetched_bytes_total{node="ic0"} 4194816)"));
    EXPECT_TRUE(
        has_line(text, R"(intellicache_inflight_fetches{node="ic0"} 3)"));
    EXPECT_TRUE(
        has_line(text, R"(intellicache_cache_used_bytes{node="ic0"} 4096)"));
    EXPECT_TRUE(
        has_line(text, R"(intellicache_cache_size_bytes{node="ic0"} 8388608)"));
    EXPECT_TRUE(has_line(text, R"(intellicache_base_up{node="ic0"} 1)"));
    EXPECT_TRUE(
        has_line(text, R"(intellicache_state{node="ic0",state="caching"} 1)"));
    EXPECT_TRUE(
        has_line(text, R"(intellicache_state{node="ic0",state="stopped"} 0)"));
    EXPECT_TRUE(
        has_line(text, R"(intellicache_cached_clusters{node="ic0"} 512)"));
    EXPECT_TRUE(
        has_line(text, R"(intellicache_deferred_bytes{node="ic0"} 16384)"));
    EXPECT_TRUE(has_line(
        text, R"(intellicache_deferred_bytes_total{node="ic0"} 65536)"));
    /* Unbounded: no cache_size family at all. */
    EXPECT_EQ(render().find("intellicache_cache_size_bytes"),
              std::string::npos);
}

TEST(CtlPrometheus, BaseDownIsNotUp) {
    std::string ds = ctltest::driver_specific();
    ds.replace(ds.find("\"base-state\": \"up\""), 18,
               "\"base-state\": \"down\"");
    const std::string text = PrometheusRenderer::render(ctltest::parse(
        ctltest::blockstats({ctltest::node_entry("ic0", "base0", ds)})));
    EXPECT_TRUE(has_line(text, R"(intellicache_base_up{node="ic0"} 0)"));
    EXPECT_TRUE(has_line(
        text, R"(intellicache_base_state{node="ic0",state="down"} 1)"));
}

TEST(CtlPrometheus, HistogramInSecondsWithCumulativeBuckets) {
    const std::string text = render(
        R"(, "fetch-latency": {"boundaries": [1000, 2000, 1500000000],
             "bins": [1, 2, 3, 4], "sum-ns": 2500000000})");
    EXPECT_TRUE(
        has_line(text, "# TYPE intellicache_fetch_latency_seconds histogram"));
    EXPECT_TRUE(has_line(
        text,
        R"(intellicache_fetch_latency_seconds_bucket{node="ic0",le="0.000001"} 1)"));
    EXPECT_TRUE(has_line(
        text,
        R"(intellicache_fetch_latency_seconds_bucket{node="ic0",le="0.000002"} 3)"));
    EXPECT_TRUE(has_line(
        text,
        R"(intellicache_fetch_latency_seconds_bucket{node="ic0",le="1.5"} 6)"));
    EXPECT_TRUE(has_line(
        text,
        R"(intellicache_fetch_latency_seconds_bucket{node="ic0",le="+Inf"} 10)"));
    EXPECT_TRUE(has_line(
        text, R"(intellicache_fetch_latency_seconds_sum{node="ic0"} 2.5)"));
    EXPECT_TRUE(has_line(
        text, R"(intellicache_fetch_latency_seconds_count{node="ic0"} 10)"));
}

TEST(CtlPrometheus, HistogramWithoutSumIsACounterNotAHistogram) {
    const std::string text =
        render(R"(, "store-latency": {"boundaries": [1000], "bins": [1, 2]})");
    EXPECT_EQ(text.find("intellicache_store_latency_seconds"),
              std::string::npos);
    EXPECT_TRUE(has_line(
        text, "# TYPE intellicache_store_latency_observations_total counter"));
    EXPECT_TRUE(has_line(
        text,
        R"(intellicache_store_latency_observations_total{node="ic0",le="0.000001"} 1)"));
    EXPECT_TRUE(has_line(
        text,
        R"(intellicache_store_latency_observations_total{node="ic0",le="+Inf"} 3)"));
}

TEST(CtlPrometheus, NoNodesNoOutput) {
    EXPECT_EQ(PrometheusRenderer::render({}), "");
}

TEST(CtlPrometheus, Formatting) {
    EXPECT_EQ(PrometheusRenderer::escape_label("a\"b\\c\nd"),
              "a\\\"b\\\\c\\nd");
    /* Shortest text that reads back the same: no 17-digit noise. */
    EXPECT_EQ(PrometheusRenderer::format_value(18446744073709551615.0),
              "18446744073709551616");
    EXPECT_EQ(PrometheusRenderer::format_value(0.960710889), "0.960710889");
    EXPECT_EQ(PrometheusRenderer::format_value(42), "42");
    EXPECT_EQ(PrometheusRenderer::format_value(0.25), "0.25");
    EXPECT_EQ(PrometheusRenderer::format_le_ns(1), "0.000000001");
    EXPECT_EQ(PrometheusRenderer::format_le_ns(67108864000ULL), "67.108864");
    EXPECT_EQ(PrometheusRenderer::format_le_ns(2000000000ULL), "2");
}

TEST(CtlPrometheus, NodeNamesAreEscaped) {
    const std::string text = PrometheusRenderer::render(
        ctltest::parse(ctltest::blockstats({ctltest::node_entry(
            "we\\\"ird", "", ctltest::driver_specific())})));
    EXPECT_NE(text.find(R"({node="we\"ird"})"), std::string::npos) << text;
}

} // namespace
