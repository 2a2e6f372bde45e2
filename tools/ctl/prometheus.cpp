/*
 * intellicache-ctl: node statistics in the Prometheus text exposition
 * format.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "prometheus.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <functional>
#include <optional>

namespace icctl {

namespace {

constexpr std::string_view kPrefix = "intellicache_";

/* One metric family being written: HELP and TYPE once, then samples. */
class Family {
public:
    Family(std::string &out, std::string_view name, std::string_view type,
           std::string_view help)
        : out_(out), name_(std::string(kPrefix) + std::string(name)) {
        out_ += "# HELP " + name_ + " " + std::string(help) + "\n";
        out_ += "# TYPE " + name_ + " " + std::string(type) + "\n";
    }

    /* A sample of the family, or of a suffixed series (_bucket ...). */
    void sample(const NodeStats &n, double value, std::string_view suffix = "",
                std::string_view extra_labels = "") {
        out_ += name_;
        out_ += suffix;
        out_ += "{node=\"" + PrometheusRenderer::escape_label(n.node) + "\"";
        if (!extra_labels.empty()) {
            out_ += ",";
            out_ += extra_labels;
        }
        out_ += "} " + PrometheusRenderer::format_value(value) + "\n";
    }

private:
    std::string &out_;
    std::string name_;
};

using Nodes = std::vector<NodeStats>;

void counter(std::string &out, const Nodes &nodes, std::string_view name,
             std::string_view qmp, std::string_view help) {
    Family f(out, name, "counter", help);
    for (const NodeStats &n : nodes) {
        f.sample(n, static_cast<double>(n.counter(qmp)));
    }
}

void gauge_of(
    std::string &out, const Nodes &nodes, std::string_view name,
    std::string_view help,
    const std::function<std::optional<double>(const NodeStats &)> &value) {
    bool any = false;
    for (const NodeStats &n : nodes) {
        any = any || value(n).has_value();
    }
    if (!any) {
        return;
    }
    Family f(out, name, "gauge", help);
    for (const NodeStats &n : nodes) {
        if (auto v = value(n)) {
            f.sample(n, *v);
        }
    }
}

void state_set(std::string &out, const Nodes &nodes, std::string_view name,
               std::string_view help,
               const std::vector<std::string_view> &states,
               std::string NodeStats::*member) {
    Family f(out, name, "gauge", help);
    for (const NodeStats &n : nodes) {
        std::vector<std::string_view> all = states;
        if (std::find(all.begin(), all.end(), n.*member) == all.end()) {
            all.emplace_back(n.*member); /* a state of a newer daemon */
        }
        for (std::string_view s : all) {
            f.sample(n, s == n.*member ? 1 : 0, "",
                     "state=\"" + PrometheusRenderer::escape_label(s) + "\"");
        }
    }
}

void histogram(std::string &out, const Nodes &nodes, std::string_view kind,
               std::string_view what) {
    const std::string stem = std::string(kind) + "_latency";
    bool with_sum = false;
    bool without_sum = false;
    for (const NodeStats &n : nodes) {
        auto it = n.histograms.find(kind);
        if (it != n.histograms.end()) {
            (it->second.sum_ns ? with_sum : without_sum) = true;
        }
    }
    auto buckets = [&](Family &f, const NodeStats &n, const Histogram &h,
                       std::string_view suffix) {
        const std::vector<std::uint64_t> cum = h.cumulative();
        for (std::size_t i = 0; i < cum.size(); i++) {
            const std::string le =
                i < h.boundaries_ns.size()
                    ? PrometheusRenderer::format_le_ns(h.boundaries_ns[i])
                    : "+Inf";
            f.sample(n, static_cast<double>(cum[i]), suffix,
                     "le=\"" + le + "\"");
        }
    };
    if (with_sum) {
        Family f(out, stem + "_seconds", "histogram",
                 "Latency of " + std::string(what) + ".");
        for (const NodeStats &n : nodes) {
            auto it = n.histograms.find(kind);
            if (it == n.histograms.end() || !it->second.sum_ns) {
                continue;
            }
            const Histogram &h = it->second;
            buckets(f, n, h, "_bucket");
            f.sample(n, static_cast<double>(*h.sum_ns) / 1e9, "_sum");
            f.sample(n, static_cast<double>(h.count()), "_count");
        }
    }
    /*
     * A histogram without its sum is not a valid Prometheus histogram:
     * its buckets are exported as a counter of requests by upper bound
     * (cumulative, like buckets), and nothing is made up.
     */
    if (without_sum) {
        Family f(out, stem + "_observations_total", "counter",
                 "Requests of " + std::string(what) +
                     " with a latency of at most le seconds (the daemon "
                     "reports no latency sum).");
        for (const NodeStats &n : nodes) {
            auto it = n.histograms.find(kind);
            if (it == n.histograms.end() || it->second.sum_ns) {
                continue;
            }
            buckets(f, n, it->second, "");
        }
    }
}

} // namespace

std::string PrometheusRenderer::escape_label(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        switch (c) {
        case '\\':
            out += "\\\\";
            break;
        case '"':
            out += "\\\"";
            break;
        case '\n':
            out += "\\n";
            break;
        default:
            out += c;
        }
    }
    return out;
}

std::string PrometheusRenderer::format_value(double value) {
    if (std::isnan(value)) {
        return "NaN";
    }
    if (std::isinf(value)) {
        return value > 0 ? "+Inf" : "-Inf";
    }
    char buf[64];
    if (value == std::floor(value) && std::fabs(value) < 1e18) {
        std::snprintf(buf, sizeof(buf), "%.0f", value);
        return buf;
    }
    /* The shortest text that reads back as the same double. */
    const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
    return ec == std::errc() ? std::string(buf, end) : std::to_string(value);
}

std::string PrometheusRenderer::format_le_ns(std::uint64_t ns) {
    /* Exact decimal seconds: whole seconds, then the nanoseconds without
     * trailing zeros. */
    std::string out = std::to_string(ns / 1000000000U);
    std::uint64_t frac = ns % 1000000000U;
    if (frac != 0) {
        char buf[16];
        std::snprintf(buf, sizeof(buf), "%09llu",
                      static_cast<unsigned long long>(frac));
        std::string digits(buf);
        digits.erase(digits.find_last_not_of('0') + 1);
        out += "." + digits;
    }
    return out;
}

std::string PrometheusRenderer::render(const std::vector<NodeStats> &nodes) {
    std::string out;
    if (nodes.empty()) {
        return out;
    }
    state_set(out, nodes, "state",
              "What the node does with reads and fetched data (1 for its "
              "current state).",
              {"caching", "stopped", "bypassed", "inactive"},
              &NodeStats::state);
    state_set(out, nodes, "base_state",
              "Whether the base answers, as the node's reads tell (1 for "
              "its current state).",
              {"up", "retrying", "down"}, &NodeStats::base_state);
    gauge_of(out, nodes, "base_up",
             "1 if the node's base answers (base state up), else 0.",
             [](const NodeStats &n) -> std::optional<double> {
                 return n.base_state == "up" ? 1 : 0;
             });
    gauge_of(out, nodes, "base_size_bytes", "Size of the base image.",
             [](const NodeStats &n) -> std::optional<double> {
                 if (!n.base_size) {
                     return std::nullopt;
                 }
                 return static_cast<double>(*n.base_size);
             });
    gauge_of(out, nodes, "cluster_size_bytes", "The unit of caching.",
             [](const NodeStats &n) -> std::optional<double> {
                 return static_cast<double>(n.cluster_size);
             });
    gauge_of(out, nodes, "clusters", "Clusters of the base image.",
             [](const NodeStats &n) -> std::optional<double> {
                 return static_cast<double>(n.cluster_count);
             });
    gauge_of(out, nodes, "cached_clusters",
             "Clusters whose data is in the cache file.",
             [](const NodeStats &n) -> std::optional<double> {
                 return static_cast<double>(n.counter("cached-clusters"));
             });
    gauge_of(out, nodes, "durable_clusters",
             "Clusters recorded in the cache file's metadata (they survive "
             "a crash).",
             [](const NodeStats &n) -> std::optional<double> {
                 return static_cast<double>(n.counter("durable-clusters"));
             });
    gauge_of(out, nodes, "cache_size_bytes",
             "The bound on cached data (bounded caches only).",
             [](const NodeStats &n) -> std::optional<double> {
                 if (!n.cache_size) {
                     return std::nullopt;
                 }
                 return static_cast<double>(*n.cache_size);
             });
    gauge_of(out, nodes, "cache_used_bytes",
             "Bytes of the bound taken now (bounded caches only).",
             [](const NodeStats &n) -> std::optional<double> {
                 if (!n.used_bytes) {
                     return std::nullopt;
                 }
                 return static_cast<double>(*n.used_bytes);
             });

    {
        Family f(out, "read_bytes_total", "counter",
                 "Bytes of user reads by where they came from: cache (stored "
                 "before), ahead (first read of data stored by read-ahead or "
                 "prefetch), base (fetched for the reader or joined a fetch "
                 "in flight).");
        for (const NodeStats &n : nodes) {
            const std::uint64_t hit = n.counter("hit-bytes");
            const std::uint64_t ahead =
                n.hit_ahead_bytes ? std::min(*n.hit_ahead_bytes, hit) : 0;
            f.sample(n, static_cast<double>(hit - ahead), "",
                     "source=\"cache\"");
            if (n.hit_ahead_bytes) {
                f.sample(n, static_cast<double>(ahead), "", "source=\"ahead\"");
            }
            f.sample(n,
                     static_cast<double>(n.counter("miss-bytes") +
                                         n.counter("wait-bytes")),
                     "", "source=\"base\"");
        }
    }
    counter(out, nodes, "read_wait_bytes_total", "wait-bytes",
            "Bytes of user reads served by a fetch already in flight "
            "(part of source=\"base\").");
    counter(out, nodes, "fetches_total", "fetches",
            "Reads of the base issued, for user reads and read-ahead.");
    counter(out, nodes, "fetched_bytes_total", "fetched-bytes",
            "Bytes read from the base by fetches that succeeded.");
    counter(out, nodes, "fetch_errors_total", "fetch-errors",
            "Fetches that failed.");
    counter(out, nodes, "fetch_retries_total", "fetch-retries",
            "Retries of the base after a failed fetch.");
    counter(out, nodes, "miss_timeouts_total", "miss-timeouts",
            "Reads that failed after waiting miss-timeout for the base.");
    counter(out, nodes, "fast_failures_total", "fast-failures",
            "Reads of uncached data failed at once because the base was "
            "down.");
    counter(out, nodes, "probes_total", "probes",
            "Reads of a down base issued to find out whether it is back.");
    counter(out, nodes, "late_fetches_total", "late-fetches",
            "Base reads that answered after every waiting read gave up.");
    counter(out, nodes, "read_ahead_bytes_total", "read-ahead-bytes",
            "Bytes of fetches issued ahead of sequential readers.");
    counter(out, nodes, "prefetch_bytes_total", "prefetch-bytes",
            "Bytes of fetches issued by prefetches.");
    counter(out, nodes, "stored_bytes_total", "stored-bytes",
            "Bytes of fetched data written into the cache file.");
    counter(out, nodes, "store_errors_total", "store-errors",
            "Writes of fetched data into the cache file that failed.");
    counter(out, nodes, "store_skipped_total", "store-skipped",
            "Fetches whose data was deliberately not stored.");
    counter(out, nodes, "zeroed_bytes_total", "zeroed-bytes",
            "Bytes of clusters recorded as zeros without reading them.");
    counter(out, nodes, "evicted_bytes_total", "evicted-bytes",
            "Bytes of clusters freed to keep the cache within its bound.");
    counter(out, nodes, "scan_bytes_total", "scan-bytes",
            "Bytes fetched for scans and not stored.");
    counter(out, nodes, "no_room_bytes_total", "no-room-bytes",
            "Bytes fetched and not stored for lack of room.");
    counter(out, nodes, "unadmitted_bytes_total", "unadmitted-bytes",
            "Bytes fetched and not stored: a full cache did not admit them.");
    gauge_of(out, nodes, "inflight_fetches",
             "Fetches not finished now (reading the base or waiting to be "
             "stored).",
             [](const NodeStats &n) -> std::optional<double> {
                 return static_cast<double>(n.counter("inflight-fetches"));
             });
    gauge_of(out, nodes, "store_backlog_bytes",
             "Bytes fetched and waiting to be written into the cache file.",
             [](const NodeStats &n) -> std::optional<double> {
                 return static_cast<double>(n.counter("store-backlog-bytes"));
             });
    counter(out, nodes, "deferred_bytes_total", "deferred-total-bytes",
            "Bytes of guests' misses whose store was deferred until guests "
            "were quiet.");
    gauge_of(out, nodes, "deferred_bytes",
             "Bytes of guests' misses waiting to be fetched again and "
             "stored once guests are quiet.",
             [](const NodeStats &n) -> std::optional<double> {
                 return static_cast<double>(n.counter("deferred-bytes"));
             });

    histogram(out, nodes, "hit", "user reads served from the cache");
    histogram(out, nodes, "miss", "user reads that needed the base");
    histogram(out, nodes, "fetch", "reads of the base");
    histogram(out, nodes, "store", "writes of fetched data into the cache");
    return out;
}

} // namespace icctl
