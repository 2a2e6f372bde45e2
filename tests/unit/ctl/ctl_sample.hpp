/*
 * Unit tests of intellicache-ctl: a query-blockstats reply to parse.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef CTL_SAMPLE_HPP
#define CTL_SAMPLE_HPP

#include "json.hpp"
#include "node_stats.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace ctltest {

/* @text split into its lines, without their newlines. */
inline std::vector<std::string> lines_of(const std::string &text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        out.push_back(line);
    }
    return out;
}

/* The driver-specific member of a node, as the daemon reports it, with
 * @extra members (a JSON fragment starting with a comma) appended. */
inline std::string driver_specific(const std::string &extra = "") {
    return R"({"driver": "intellicache", "state": "caching",
      "cluster-size": 4096, "cluster-count": 1025, "cached-clusters": 512,
      "durable-clusters": 500, "hit-bytes": 3000, "miss-bytes": 800,
      "wait-bytes": 200, "fetches": 17, "fetched-bytes": 4194816,
      "fetch-errors": 2, "stored-bytes": 2097152, "store-errors": 0,
      "store-skipped": 1, "read-ahead-bytes": 65536, "inflight-fetches": 3,
      "store-backlog-bytes": 8192, "base-state": "up", "fetch-retries": 1,
      "miss-timeouts": 0, "fast-failures": 0, "probes": 0,
      "late-fetches": 0, "prefetch-bytes": 0, "zeroed-bytes": 0,
      "evicted-bytes": 0, "scan-bytes": 0, "no-room-bytes": 0,
      "unadmitted-bytes": 0, "deferred-bytes": 16384,
      "deferred-total-bytes": 65536)" +
           extra + "}";
}

/* A query-blockstats reply: a file node, then intellicache nodes. */
inline std::string blockstats(const std::vector<std::string> &nodes) {
    std::string out = R"([{"node-name": "base0", "stats": {},
      "driver-specific": {"driver": "file", "discard-nb-ok": 0}})";
    for (const std::string &n : nodes) {
        out += ", " + n;
    }
    return out + "]";
}

inline std::string node_entry(const std::string &name, const std::string &base,
                              const std::string &ds) {
    std::string parent;
    if (!base.empty()) {
        parent = R"("parent": {"node-name": ")" + base + R"(", "stats": {}},)";
    }
    return R"({"node-name": ")" + name + "\", " + parent +
           R"("stats": {}, "driver-specific": )" + ds + "}";
}

inline std::vector<icctl::NodeStats> parse(const std::string &reply) {
    std::string error;
    icctl::JsonPtr j = icctl::json_parse(reply, error);
    EXPECT_TRUE(j) << error;
    return icctl::parse_blockstats(j.get());
}

} // namespace ctltest

#endif
