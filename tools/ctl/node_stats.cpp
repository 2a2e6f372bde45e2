/*
 * intellicache-ctl: the state and counters of intellicache nodes.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "node_stats.hpp"

#include <algorithm>
#include <numeric>

namespace icctl {

namespace {

[[noreturn]] void not_a_count(const std::string &node,
                              const std::string &what) {
    throw StatsError("node " + node + ": " + what +
                     " holds a value that is not a count");
}

std::vector<std::uint64_t> u64_array(json_object *array,
                                     const std::string &node,
                                     const std::string &what) {
    if (array == nullptr || !json_is(array, json_type_array)) {
        throw StatsError("node " + node + ": " + what + " is not an array");
    }
    std::vector<std::uint64_t> out;
    const std::size_t n = json_object_array_length(array);
    out.reserve(n);
    for (std::size_t i = 0; i < n; i++) {
        json_object *v = json_object_array_get_idx(array, i);
        if (!json_is(v, json_type_int) ||
            (json_object_get_int64(v) < 0 && json_object_get_uint64(v) == 0)) {
            not_a_count(node, what);
        }
        out.push_back(json_object_get_uint64(v));
    }
    return out;
}

std::optional<Histogram> parse_histogram(json_object *ds,
                                         const std::string &node,
                                         std::string_view kind) {
    const std::string name = std::string(kind) + "-latency";
    json_object *h = json_member(ds, name.c_str());
    if (h == nullptr) {
        return std::nullopt;
    }
    Histogram out;
    out.boundaries_ns =
        u64_array(json_member(h, "boundaries"), node, name + ".boundaries");
    out.bins = u64_array(json_member(h, "bins"), node, name + ".bins");
    if (out.bins.size() != out.boundaries_ns.size() + 1) {
        throw StatsError("node " + node + ": " + name + " has " +
                         std::to_string(out.bins.size()) + " bins for " +
                         std::to_string(out.boundaries_ns.size()) +
                         " boundaries");
    }
    if (!std::is_sorted(out.boundaries_ns.begin(), out.boundaries_ns.end()) ||
        std::adjacent_find(out.boundaries_ns.begin(),
                           out.boundaries_ns.end()) !=
            out.boundaries_ns.end()) {
        throw StatsError("node " + node + ": " + name +
                         " boundaries are not increasing");
    }
    /* The sum is a member of the histogram ("sum-ns"); a flat
     * "<kind>-latency-sum-ns" member of the node is read as well. */
    out.sum_ns = json_u64(h, "sum-ns");
    if (!out.sum_ns) {
        out.sum_ns = json_u64(ds, (name + "-sum-ns").c_str());
    }
    return out;
}

double per_second(std::uint64_t earlier, std::uint64_t later, double seconds) {
    /* Counters restart at 0 when a node is opened again. */
    if (later < earlier || seconds <= 0) {
        return 0;
    }
    return static_cast<double>(later - earlier) / seconds;
}

} // namespace

std::uint64_t Histogram::count() const {
    return std::accumulate(bins.begin(), bins.end(), std::uint64_t{0});
}

std::vector<std::uint64_t> Histogram::cumulative() const {
    std::vector<std::uint64_t> out;
    out.reserve(bins.size());
    std::uint64_t total = 0;
    for (std::uint64_t b : bins) {
        total += b;
        out.push_back(total);
    }
    return out;
}

std::optional<Histogram> Histogram::since(const Histogram &earlier) const {
    if (earlier.boundaries_ns != boundaries_ns ||
        earlier.bins.size() != bins.size()) {
        return std::nullopt;
    }
    Histogram out;
    out.boundaries_ns = boundaries_ns;
    out.bins.resize(bins.size());
    for (std::size_t i = 0; i < bins.size(); i++) {
        if (bins[i] < earlier.bins[i]) {
            return std::nullopt;
        }
        out.bins[i] = bins[i] - earlier.bins[i];
    }
    if (sum_ns && earlier.sum_ns && *sum_ns >= *earlier.sum_ns) {
        out.sum_ns = *sum_ns - *earlier.sum_ns;
    }
    return out;
}

std::optional<double> Histogram::quantile_ns(double q) const {
    const std::uint64_t total = count();
    if (total == 0 || bins.empty()) {
        return std::nullopt;
    }
    q = std::clamp(q, 0.0, 1.0);
    const double rank = q * static_cast<double>(total);
    double below = 0;
    for (std::size_t i = 0; i < bins.size(); i++) {
        const auto in_bin = static_cast<double>(bins[i]);
        if (bins[i] != 0 && below + in_bin >= rank) {
            const double lower =
                i == 0 ? 0.0 : static_cast<double>(boundaries_ns[i - 1]);
            if (i == boundaries_ns.size()) {
                return lower;
            }
            const auto upper = static_cast<double>(boundaries_ns[i]);
            const double within = std::max(rank - below, 0.0) / in_bin;
            return lower + (upper - lower) * within;
        }
        below += in_bin;
    }
    return static_cast<double>(boundaries_ns.empty() ? 0
                                                     : boundaries_ns.back());
}

NodeStats NodeStats::parse(const std::string &node, const std::string &base,
                           json_object *ds) {
    NodeStats s;
    s.node = node;
    s.base_node = base;
    auto need_str = [&](const char *key) {
        auto v = json_string(ds, key);
        if (!v) {
            throw StatsError("node " + node + ": its statistics lack '" + key +
                             "'");
        }
        return *v;
    };
    auto need_u64 = [&](std::string_view key) {
        const std::string k(key);
        auto v = json_u64(ds, k.c_str());
        if (!v) {
            throw StatsError("node " + node + ": its statistics lack '" + k +
                             "'");
        }
        return *v;
    };
    s.state = need_str("state");
    /* base-state is new in 0.3: an older daemon has none. */
    s.base_state = json_string(ds, "base-state").value_or("up");
    s.cluster_size = need_u64("cluster-size");
    s.cluster_count = need_u64("cluster-count");
    for (std::string_view name : kCounterNames) {
        auto v = json_u64(ds, std::string(name).c_str());
        /* The counters of 0.3 are absent on an older daemon: 0. */
        s.counters.emplace(std::string(name), v.value_or(0));
    }
    need_u64("cached-clusters");
    need_u64("hit-bytes");
    need_u64("miss-bytes");
    s.cache_size = json_u64(ds, "cache-size");
    s.used_bytes = json_u64(ds, "used-bytes");
    s.hit_ahead_bytes = json_u64(ds, "hit-ahead-bytes");
    for (std::string_view kind : kHistogramKinds) {
        if (auto h = parse_histogram(ds, node, kind)) {
            s.histograms.emplace(std::string(kind), std::move(*h));
        }
    }
    return s;
}

std::uint64_t NodeStats::counter(std::string_view name) const {
    auto it = counters.find(name);
    return it == counters.end() ? 0 : it->second;
}

std::uint64_t NodeStats::read_bytes() const {
    return counter("hit-bytes") + counter("miss-bytes") + counter("wait-bytes");
}

std::optional<double> NodeStats::hit_ratio() const {
    const std::uint64_t total = read_bytes();
    if (total == 0) {
        return std::nullopt;
    }
    return static_cast<double>(counter("hit-bytes")) /
           static_cast<double>(total);
}

double NodeStats::fill() const {
    if (cluster_count == 0) {
        return 0;
    }
    return static_cast<double>(counter("cached-clusters")) /
           static_cast<double>(cluster_count);
}

std::vector<NodeStats> parse_blockstats(json_object *reply) {
    if (reply == nullptr || !json_is(reply, json_type_array)) {
        throw StatsError("query-blockstats did not return a list");
    }
    std::vector<NodeStats> out;
    const std::size_t n = json_object_array_length(reply);
    for (std::size_t i = 0; i < n; i++) {
        json_object *entry = json_object_array_get_idx(reply, i);
        json_object *ds = json_member(entry, "driver-specific");
        if (json_string(ds, "driver") != "intellicache") {
            continue;
        }
        const auto node = json_string(entry, "node-name");
        if (!node) {
            continue;
        }
        /* "parent" is the node's file child: the base. */
        const auto base =
            json_string(json_member(entry, "parent"), "node-name");
        out.push_back(NodeStats::parse(*node, base.value_or(""), ds));
    }
    return out;
}

void add_base_sizes(std::vector<NodeStats> &nodes, json_object *named_nodes) {
    if (!json_is(named_nodes, json_type_array)) {
        return;
    }
    const std::size_t n = json_object_array_length(named_nodes);
    for (std::size_t i = 0; i < n; i++) {
        json_object *entry = json_object_array_get_idx(named_nodes, i);
        const auto name = json_string(entry, "node-name");
        if (!name) {
            continue;
        }
        auto it =
            std::find_if(nodes.begin(), nodes.end(),
                         [&](const NodeStats &s) { return s.node == *name; });
        if (it == nodes.end()) {
            continue;
        }
        json_object *image = json_member(entry, "image");
        auto size =
            json_u64(json_member(json_member(image, "format-specific"), "data"),
                     "base-size");
        if (!size) {
            size = json_u64(image, "virtual-size");
        }
        it->base_size = size;
    }
}

NodeRates NodeRates::between(const NodeStats &earlier, const NodeStats &later,
                             double seconds) {
    NodeRates r;
    r.read_bytes =
        per_second(earlier.read_bytes(), later.read_bytes(), seconds);
    auto rate = [&](const char *name) {
        return per_second(earlier.counter(name), later.counter(name), seconds);
    };
    r.hit_bytes = rate("hit-bytes");
    r.miss_bytes = rate("miss-bytes") + rate("wait-bytes");
    r.fetched_bytes = rate("fetched-bytes");
    r.stored_bytes = rate("stored-bytes");
    r.fetches = rate("fetches");
    r.fetch_errors = rate("fetch-errors");
    for (const auto &[kind, h] : later.histograms) {
        auto old = earlier.histograms.find(kind);
        if (old == earlier.histograms.end()) {
            r.histograms.emplace(kind, h);
        } else if (auto d = h.since(old->second)) {
            r.histograms.emplace(kind, std::move(*d));
        }
    }
    return r;
}

} // namespace icctl
