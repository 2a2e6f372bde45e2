/*
 * intellicache-ctl: the state and counters of intellicache nodes, as
 * query-blockstats reports them (BlockStatsSpecificIntellicache).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ICCTL_NODE_STATS_HPP
#define ICCTL_NODE_STATS_HPP

#include "json.hpp"

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace icctl {

/* The reply is not what the schema promises. */
class StatsError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/*
 * A latency histogram (QEMU's BlockLatencyHistogramInfo): bins[i] counts
 * the requests with latency in [boundaries[i-1], boundaries[i]) ns, the
 * first from 0, the last unbounded; bins are not cumulative.
 */
struct Histogram {
    std::vector<std::uint64_t> boundaries_ns;
    std::vector<std::uint64_t> bins;
    std::optional<std::uint64_t> sum_ns; /* total latency, if reported */

    std::uint64_t count() const;
    /* Cumulative counts at each boundary, then the total (+Inf). */
    std::vector<std::uint64_t> cumulative() const;
    /* The requests counted since @earlier (same boundaries), or nullopt. */
    std::optional<Histogram> since(const Histogram &earlier) const;
    /* Latency at quantile @q in (0, 1], interpolated within its bin; the
     * last bin reports its lower boundary.  nullopt when empty. */
    std::optional<double> quantile_ns(double q) const;
};

/* The histograms a node may report, by QMP name stem ("hit" for
 * "hit-latency", "hit-latency-sum-ns"). */
inline constexpr std::array<std::string_view, 4> kHistogramKinds = {
    "hit", "miss", "fetch", "store"};

/* The uint64 counters of BlockStatsSpecificIntellicache every node has
 * (optional members are held separately). */
inline constexpr std::array<std::string_view, 27> kCounterNames = {
    "cached-clusters",  "durable-clusters",    "hit-bytes",
    "miss-bytes",       "wait-bytes",          "fetches",
    "fetched-bytes",    "fetch-errors",        "stored-bytes",
    "store-errors",     "store-skipped",       "read-ahead-bytes",
    "inflight-fetches", "store-backlog-bytes", "fetch-retries",
    "miss-timeouts",    "fast-failures",       "probes",
    "late-fetches",     "prefetch-bytes",      "zeroed-bytes",
    "evicted-bytes",    "scan-bytes",          "no-room-bytes",
    "unadmitted-bytes", "deferred-bytes",      "deferred-total-bytes"};

/* One intellicache node at one moment. */
struct NodeStats {
    std::string node;
    std::string base_node;                  /* empty: no base attached */
    std::optional<std::uint64_t> base_size; /* from query-named-block-nodes */
    std::string state;
    std::string base_state;
    std::uint64_t cluster_size = 0;
    std::uint64_t cluster_count = 0;
    std::map<std::string, std::uint64_t, std::less<>> counters;
    std::optional<std::uint64_t> cache_size;
    std::optional<std::uint64_t> used_bytes;
    std::optional<std::uint64_t> hit_ahead_bytes;
    std::map<std::string, Histogram, std::less<>> histograms;

    /*
     * From @ds, the driver-specific member of the node's query-blockstats
     * entry.  Throws StatsError naming the node and the member if a
     * required member is missing or of the wrong type, or an optional
     * histogram is malformed.
     */
    static NodeStats parse(const std::string &node, const std::string &base,
                           json_object *ds);

    /* A counter by QMP name; 0 if unknown. */
    std::uint64_t counter(std::string_view name) const;
    /* Bytes of user reads: from the cache, by fetches, by fetches in
     * flight. */
    std::uint64_t read_bytes() const;
    /* hit-bytes over read_bytes(), or nullopt before any read. */
    std::optional<double> hit_ratio() const;
    /* cached-clusters over cluster-count. */
    double fill() const;
};

/*
 * The intellicache nodes of a query-blockstats reply (with query-nodes
 * true), in the daemon's order.  Other drivers' nodes are skipped.
 */
std::vector<NodeStats> parse_blockstats(json_object *reply);

/*
 * Sets the base size of each node in @nodes from a query-named-block-nodes
 * reply (the format-specific base-size of the node's image, else its
 * virtual size).  Nodes it does not list keep none.
 */
void add_base_sizes(std::vector<NodeStats> &nodes, json_object *named_nodes);

/* Per-second rates between two samples of the same node. */
struct NodeRates {
    double read_bytes = 0; /* user reads */
    double hit_bytes = 0;  /* from the cache */
    double miss_bytes = 0; /* from the base, fetched for the reader */
    double fetched_bytes = 0;
    double stored_bytes = 0;
    double fetches = 0;
    double fetch_errors = 0;
    std::map<std::string, Histogram, std::less<>> histograms; /* deltas */

    static NodeRates between(const NodeStats &earlier, const NodeStats &later,
                             double seconds);
};

} // namespace icctl

#endif
