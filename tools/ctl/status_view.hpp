/*
 * intellicache-ctl: the status of nodes as a table for people, as JSON
 * for programs, and the live view of top.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ICCTL_STATUS_VIEW_HPP
#define ICCTL_STATUS_VIEW_HPP

#include "node_stats.hpp"

#include <optional>
#include <string>
#include <vector>

namespace icctl {

/* A node's sample, with its rates when it was sampled twice. */
struct NodeView {
    NodeStats stats;
    std::optional<NodeRates> rates;
};

/* Byte counts for people: 512B, 4.0K, 1.5M, 2.0G (powers of 1024). */
std::string human_bytes(double bytes);

/* Left-aligned columns separated by two spaces, one row per line. */
class Table {
public:
    explicit Table(std::vector<std::string> header);
    void add_row(std::vector<std::string> row);
    std::string render() const;

private:
    std::vector<std::vector<std::string>> rows_;
};

class StatusRenderer {
public:
    /* One row per node: node, base, state, base state, cluster size,
     * fill, used of cache-size, hit ratio, and rates if sampled. */
    static std::string table(const std::vector<NodeView> &nodes);
    /* {"nodes": [...]} with every counter under its QMP name. */
    static std::string json(const std::vector<NodeView> &nodes);
};

class TopRenderer {
public:
    /* Rates and latency percentiles (of the requests in the interval). */
    static std::string frame(const std::vector<NodeView> &nodes,
                             double interval_s);
    /* A latency for people: 850ns, 12us, 3.4ms, 1.2s; "-" for none. */
    static std::string latency(std::optional<double> ns);
};

} // namespace icctl

#endif
