/*
 * intellicache-ctl: node statistics in the Prometheus text exposition
 * format (version 0.0.4).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ICCTL_PROMETHEUS_HPP
#define ICCTL_PROMETHEUS_HPP

#include "node_stats.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace icctl {

/*
 * Renders every metric family once (HELP and TYPE lines, then a sample
 * per node), with the naming of node_exporter's node_disk_*: base units
 * (bytes, seconds), counters ending in _total, the node as a label.
 */
class PrometheusRenderer {
public:
    static std::string render(const std::vector<NodeStats> &nodes);

    /* A label value escaped for the exposition format. */
    static std::string escape_label(std::string_view value);
    /* A sample value: integers exactly, others with up to 17 digits. */
    static std::string format_value(double value);
    /* Nanoseconds as seconds for an le label ("0.000001", "+Inf"). */
    static std::string format_le_ns(std::uint64_t ns);
};

} // namespace icctl

#endif
