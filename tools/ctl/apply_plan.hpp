/*
 * intellicache-ctl apply: what to change so that the daemon matches the
 * host file.  A pure function of the file and of the daemon's state as
 * plain structs, so that every decision is tested without a daemon.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ICCTL_APPLY_PLAN_HPP
#define ICCTL_APPLY_PLAN_HPP

#include "host_config.hpp"

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace icctl {

/* The file asks for a change the daemon cannot make; nothing is done. */
class PlanError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/* The managed nodes of one base: ic-NAME-base, ic-NAME-cf, ic-NAME. */
inline std::string base_node_name(const std::string &n) {
    return "ic-" + n + "-base";
}
inline std::string cache_node_name(const std::string &n) {
    return "ic-" + n + "-cf";
}
inline std::string ic_node_name(const std::string &n) {
    return "ic-" + n;
}
inline constexpr const char *kPoolId = "ic-pool";

/* The tunables in effect, as the node's statistics report them. */
struct LiveSettings {
    std::uint64_t max_inflight = 0;
    std::uint64_t max_fetch = 0;
    std::uint64_t read_ahead = 0;
    std::uint64_t miss_timeout = 0; /* seconds */
    std::uint64_t scan_threshold = 0;
    std::uint64_t cache_size = 0; /* 0: not bounded by its own size */
    bool operator==(const LiveSettings &) const = default;
};

/* A managed base as the daemon has it; parts may be missing after an
 * apply that failed half-way. */
struct CurrentBase {
    std::string name;
    bool has_base_node = false;
    bool has_cache_node = false;
    bool has_ic_node = false;
    bool has_export = false;
    std::string url;                        /* the base node's filename */
    std::optional<std::string> fingerprint; /* given at open */
    std::optional<std::uint64_t> given_cluster_size; /* given at open */
    std::uint64_t cluster_size = 0;                  /* in effect */
    std::optional<LiveSettings> settings;
    bool in_pool = false;
    std::vector<std::string> vm_users; /* VMs whose overlay it backs */
};

struct CurrentPool {
    std::uint64_t size = 0;
    std::uint64_t members = 0;
};

struct CurrentState {
    std::vector<CurrentBase> bases;
    std::optional<CurrentPool> pool;
};

struct Action {
    enum class Kind {
        RemoveBase, /* export, nodes; the cache file stays */
        DeletePool,
        CreatePool,
        AddBase, /* cache file if missing, nodes, export */
        ReopenBase,
    };
    Kind kind;
    std::string name;     /* the base; empty for the pool */
    std::string reason;   /* for the report: what differs */
    bool replace = false; /* RemoveBase/AddBase of a base added again */
};

/* The settings a node opened with @o would have, for its @cluster_size
 * and the pool's @pool_size (0: none): the core's own defaults.  Throws
 * PlanError if the options do not fit the cluster size. */
LiveSettings expected_settings(const NodeOptions &o, std::uint64_t cluster_size,
                               std::uint64_t pool_size);

/*
 * The actions, in the order to run them: removals (bases no longer
 * listed, and the first half of replacements), the pool, additions,
 * reopens.  Empty when the daemon matches.  Throws PlanError, before any
 * action, when the pool's size differs while nodes use it, or a base to
 * remove (or replace) backs a VM's overlay.
 */
std::vector<Action> plan_apply(const HostConfig &want,
                               const CurrentState &have);

} // namespace icctl

#endif
