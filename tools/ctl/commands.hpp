/*
 * intellicache-ctl: the subcommands.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ICCTL_COMMANDS_HPP
#define ICCTL_COMMANDS_HPP

#include "args.hpp"
#include "node_stats.hpp"
#include "qmp_client.hpp"

#include <chrono>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace icctl {

/* Exit statuses: 0 success, 1 verify found mismatches, 2 any error. */
inline constexpr int kExitOk = 0;
inline constexpr int kExitMismatch = 1;
inline constexpr int kExitError = 2;

/* A node that was asked for by name is not there. */
class NodeNotFound : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/* Samples the intellicache nodes of a daemon over one QMP session. */
class StatsSource {
public:
    StatsSource(const std::string &socket, std::chrono::milliseconds timeout)
        : qmp_(socket, timeout) {}
    /* Every intellicache node, or only @node (NodeNotFound if it is not
     * an intellicache node of the daemon). */
    std::vector<NodeStats> sample(const std::optional<std::string> &node);

private:
    QmpClient qmp_;
};

/* Runs the parsed command; returns the exit status, throws on errors. */
int run_command(const Invocation &inv, std::ostream &out);

} // namespace icctl

#endif
