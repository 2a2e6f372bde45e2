/*
 * intellicache-ctl: the status of nodes as a table, as JSON, and top.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "status_view.hpp"

#include "json.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace icctl {

namespace {

std::string fixed(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
    return buf;
}

std::string percent(std::optional<double> ratio) {
    return ratio ? fixed(*ratio * 100, 1) + "%" : "-";
}

std::string rate(double bytes_per_s) {
    return human_bytes(bytes_per_s) + "/s";
}

json_object *u64(std::uint64_t v) {
    return json_object_new_uint64(v);
}

} // namespace

std::string human_bytes(double bytes) {
    static const char *const units[] = {"B", "K", "M", "G", "T", "P"};
    std::size_t u = 0;
    while (bytes >= 1024 && u + 1 < std::size(units)) {
        bytes /= 1024;
        u++;
    }
    if (u == 0) {
        return fixed(bytes, 0) + units[0];
    }
    return fixed(bytes, 1) + units[u];
}

Table::Table(std::vector<std::string> header) {
    rows_.push_back(std::move(header));
}

void Table::add_row(std::vector<std::string> row) {
    rows_.push_back(std::move(row));
}

std::string Table::render() const {
    std::vector<std::size_t> width;
    for (const auto &row : rows_) {
        width.resize(std::max(width.size(), row.size()), 0);
        for (std::size_t i = 0; i < row.size(); i++) {
            width[i] = std::max(width[i], row[i].size());
        }
    }
    std::string out;
    for (const auto &row : rows_) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); i++) {
            line += row[i];
            if (i + 1 < row.size()) {
                line.append(width[i] - row[i].size() + 2, ' ');
            }
        }
        out += line + "\n";
    }
    return out;
}

std::string StatusRenderer::table(const std::vector<NodeView> &nodes) {
    const bool with_rates =
        std::any_of(nodes.begin(), nodes.end(),
                    [](const NodeView &v) { return v.rates.has_value(); });
    std::vector<std::string> header = {"NODE",  "BASE",       "SIZE",
                                       "STATE", "BASE-STATE", "CLUSTER",
                                       "FILL",  "USED",       "HIT%"};
    if (with_rates) {
        header.insert(header.end(), {"READ/s", "HIT/s", "BASE/s", "STORE/s"});
    }
    Table t(header);
    for (const NodeView &v : nodes) {
        const NodeStats &n = v.stats;
        std::string used = "-";
        if (n.cache_size && n.used_bytes) {
            used = human_bytes(static_cast<double>(*n.used_bytes)) + "/" +
                   human_bytes(static_cast<double>(*n.cache_size));
        } else if (n.used_bytes) {
            /* Bounded by its pool alone: the pool's size is the bound. */
            used = human_bytes(static_cast<double>(*n.used_bytes)) + "/pool";
        }
        std::vector<std::string> row = {
            n.node,
            n.base_node.empty() ? "-" : n.base_node,
            n.base_size ? human_bytes(static_cast<double>(*n.base_size)) : "-",
            n.state,
            n.base_state,
            human_bytes(static_cast<double>(n.cluster_size)),
            std::to_string(n.counter("cached-clusters")) + "/" +
                std::to_string(n.cluster_count) + " (" +
                fixed(n.fill() * 100, 1) + "%)",
            used,
            percent(n.hit_ratio())};
        if (with_rates) {
            if (v.rates) {
                row.insert(row.end(),
                           {rate(v.rates->read_bytes), rate(v.rates->hit_bytes),
                            rate(v.rates->miss_bytes),
                            rate(v.rates->stored_bytes)});
            } else {
                row.insert(row.end(), {"-", "-", "-", "-"});
            }
        }
        t.add_row(std::move(row));
    }
    return t.render();
}

std::string StatusRenderer::json(const std::vector<NodeView> &nodes) {
    JsonPtr root(json_object_new_object());
    json_object *list = json_object_new_array();
    json_object_object_add(root.get(), "nodes", list);
    for (const NodeView &v : nodes) {
        const NodeStats &n = v.stats;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "node",
                               json_object_new_string(n.node.c_str()));
        json_object_object_add(
            o, "base-node",
            n.base_node.empty() ? nullptr
                                : json_object_new_string(n.base_node.c_str()));
        json_object_object_add(o, "state",
                               json_object_new_string(n.state.c_str()));
        json_object_object_add(o, "base-state",
                               json_object_new_string(n.base_state.c_str()));
        if (n.base_size) {
            json_object_object_add(o, "base-size", u64(*n.base_size));
        }
        json_object_object_add(o, "cluster-size", u64(n.cluster_size));
        json_object_object_add(o, "cluster-count", u64(n.cluster_count));
        json_object_object_add(o, "fill", json_double(n.fill()));
        if (n.cache_size) {
            json_object_object_add(o, "cache-size", u64(*n.cache_size));
        }
        if (n.used_bytes) {
            json_object_object_add(o, "used-bytes", u64(*n.used_bytes));
        }
        const auto ratio = n.hit_ratio();
        json_object_object_add(o, "hit-ratio",
                               ratio ? json_double(*ratio) : nullptr);
        json_object *counters = json_object_new_object();
        for (const auto &[name, value] : n.counters) {
            json_object_object_add(counters, name.c_str(), u64(value));
        }
        if (n.hit_ahead_bytes) {
            json_object_object_add(counters, "hit-ahead-bytes",
                                   u64(*n.hit_ahead_bytes));
        }
        json_object_object_add(o, "counters", counters);
        if (!n.histograms.empty()) {
            /* Since the node was opened: counts, sums and percentiles. */
            json_object *lat = json_object_new_object();
            for (const auto &[kind, h] : n.histograms) {
                json_object *k = json_object_new_object();
                json_object_object_add(k, "count", u64(h.count()));
                if (h.sum_ns) {
                    json_object_object_add(k, "sum-ns", u64(*h.sum_ns));
                }
                for (const auto &[name, q] :
                     {std::pair{"p50-ns", 0.5}, std::pair{"p90-ns", 0.9},
                      std::pair{"p99-ns", 0.99}}) {
                    const auto est = h.quantile_ns(q);
                    /* An estimate within a bin: whole nanoseconds. */
                    json_object_object_add(k, name,
                                           est ? u64(static_cast<std::uint64_t>(
                                                     std::llround(*est)))
                                               : nullptr);
                }
                json_object_object_add(lat, kind.c_str(), k);
            }
            json_object_object_add(o, "latency", lat);
        }
        if (v.rates) {
            json_object *r = json_object_new_object();
            const NodeRates &nr = *v.rates;
            json_object_object_add(r, "read-bytes", json_double(nr.read_bytes));
            json_object_object_add(r, "hit-bytes", json_double(nr.hit_bytes));
            json_object_object_add(r, "base-bytes", json_double(nr.miss_bytes));
            json_object_object_add(r, "fetched-bytes",
                                   json_double(nr.fetched_bytes));
            json_object_object_add(r, "stored-bytes",
                                   json_double(nr.stored_bytes));
            json_object_object_add(r, "fetches", json_double(nr.fetches));
            json_object_object_add(r, "fetch-errors",
                                   json_double(nr.fetch_errors));
            json_object_object_add(o, "rates-per-second", r);
        }
        json_object_array_add(list, o);
    }
    return json_dump(root.get(), true) + "\n";
}

std::string TopRenderer::latency(std::optional<double> ns) {
    if (!ns) {
        return "-";
    }
    if (*ns < 1e3) {
        return fixed(*ns, 0) + "ns";
    }
    if (*ns < 1e6) {
        return fixed(*ns / 1e3, 1) + "us";
    }
    if (*ns < 1e9) {
        return fixed(*ns / 1e6, 1) + "ms";
    }
    return fixed(*ns / 1e9, 2) + "s";
}

std::string TopRenderer::frame(const std::vector<NodeView> &nodes,
                               double interval_s) {
    Table t({"NODE", "STATE", "BASE", "READ/s", "HIT%", "BASE/s", "FETCH/s",
             "HIT p50/p99", "MISS p50/p99", "FETCH p99", "STORE p99"});
    for (const NodeView &v : nodes) {
        const NodeStats &n = v.stats;
        auto pct = [&](const char *kind, double q) -> std::optional<double> {
            if (!v.rates) {
                return std::nullopt;
            }
            auto it = v.rates->histograms.find(kind);
            if (it == v.rates->histograms.end()) {
                return std::nullopt;
            }
            return it->second.quantile_ns(q);
        };
        std::optional<double> ratio;
        if (v.rates && v.rates->read_bytes > 0) {
            ratio = v.rates->hit_bytes / v.rates->read_bytes;
        }
        const NodeRates none;
        const NodeRates &r = v.rates ? *v.rates : none;
        t.add_row({n.node, n.state, n.base_state, rate(r.read_bytes),
                   percent(ratio), rate(r.miss_bytes), fixed(r.fetches, 0),
                   latency(pct("hit", 0.5)) + "/" + latency(pct("hit", 0.99)),
                   latency(pct("miss", 0.5)) + "/" + latency(pct("miss", 0.99)),
                   latency(pct("fetch", 0.99)), latency(pct("store", 0.99))});
    }
    return "intellicache-ctl top: " + std::to_string(nodes.size()) +
           " node(s), rates over " + fixed(interval_s, 1) + " s\n" + t.render();
}

} // namespace icctl
