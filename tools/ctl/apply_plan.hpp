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
/*
 * The pool apply makes for a pool-size: "ic-pool-" and the size ("1G",
 * "512M", or bytes), so that a new size is a new pool which the bases
 * move to with a reopen.  Pools whose id begins with "ic-pool" are
 * apply's to delete.
 */
std::string pool_id_for(std::uint64_t size);
bool is_managed_pool(const std::string &id);

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
    std::optional<std::string> pool;   /* the pool it is a member of */
    std::vector<std::string> vm_users; /* VMs whose overlay it backs */
};

/* An intellicache-pool object whose id is_managed_pool(). */
struct CurrentPool {
    std::string id;
    std::uint64_t size = 0;
    std::uint64_t members = 0;
};

struct CurrentState {
    std::vector<CurrentBase> bases;
    std::vector<CurrentPool> pools;
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
    std::string name;     /* the base, or the pool's id */
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
 * listed, and the first half of replacements), the new pool, additions,
 * reopens (tunables, and bases that join, leave or change pools: live,
 * with what they hold), the pools no longer wanted.  Empty when the
 * daemon matches.  Throws PlanError, before any action, when a base to
 * remove (or replace) backs a VM's overlay, or a pool to delete has
 * members apply does not manage.
 */
std::vector<Action> plan_apply(const HostConfig &want,
                               const CurrentState &have);

} // namespace icctl

#endif
