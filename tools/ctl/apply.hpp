/*
 * intellicache-ctl apply: read the daemon's managed state, run the plan
 * (apply_plan.hpp), report each action.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ICCTL_APPLY_HPP
#define ICCTL_APPLY_HPP

#include "apply_plan.hpp"
#include "args.hpp"
#include "daemon_ops.hpp"
#include "host_config.hpp"

#include <iosfwd>
#include <string>
#include <vector>

namespace icctl {

/* The managed bases and pools as the daemon has them. */
CurrentState read_current_state(DaemonOps &daemon);

/* What one action did, for the report. */
struct ActionReport {
    std::string action; /* add-base, remove-base, reopen-base, ... */
    std::string name;
    std::string text; /* one line for people */
    bool ok = true;
};

/* Runs the actions in order and stops at the first that fails. */
class ApplyRunner {
public:
    ApplyRunner(DaemonOps &daemon, const HostConfig &host)
        : daemon_(daemon), host_(host) {}

    /* The reports of the actions done; the failed one last, with ok
     * false and the daemon's error in its text. */
    std::vector<ActionReport> run(const std::vector<Action> &plan);

private:
    void add_base(const std::string &name, ActionReport &r);
    void remove_base(const std::string &name, ActionReport &r);
    void reopen_base(const std::string &name);
    json_object *ic_node_options(const std::string &name) const;

    DaemonOps &daemon_;
    const HostConfig &host_;
    bool nbd_server_checked_ = false;
};

/* Creates @path with mode 0600 unless it exists (never truncated), and
 * its directory (0700) if missing; true if it was created. */
bool create_cache_file(const std::string &path);

/* The lines of a plan not run (--dry-run). */
std::string describe_action(const Action &a);

/* intellicache-ctl apply HOSTFILE [--dry-run] [--json]. */
int run_apply(const Invocation &inv, std::ostream &out);

} // namespace icctl

#endif
