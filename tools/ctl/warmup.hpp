/*
 * intellicache-ctl: the warm-up commands of the outage issue's jobs and
 * profiles (docs/warmup.rst): record a boot profile, run a prefetch job,
 * list the jobs.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ICCTL_WARMUP_HPP
#define ICCTL_WARMUP_HPP

#include "args.hpp"
#include "json.hpp"

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace icctl {

/* One job of the daemon, as query-jobs reports it. */
struct JobInfo {
    std::string id;
    std::string type;
    std::string status;
    std::uint64_t current = 0;
    std::uint64_t total = 0;
    std::optional<std::string> error;
};

/* The jobs in a query-jobs reply (entries that are not objects skipped). */
std::vector<JobInfo> parse_jobs(json_object *reply);

/* One line per job: id, type, status, progress; "no jobs" if none. */
std::string jobs_table(const std::vector<JobInfo> &jobs);

/*
 * How job @id ended, from the events received while waiting: nullopt if
 * no BLOCK_JOB_COMPLETED or BLOCK_JOB_CANCELLED for it is among @events,
 * else "" for success or the error message.
 */
std::optional<std::string> job_outcome(const std::vector<JsonPtr> &events,
                                       const std::string &id);

/* intellicache-ctl profile start NODE FILE | profile stop NODE */
int run_profile(const Invocation &inv, std::ostream &out);
/* intellicache-ctl prefetch NODE [--profile FILE] [--speed B/s] ... */
int run_prefetch(const Invocation &inv, std::ostream &out);
/* intellicache-ctl jobs */
int run_jobs(const Invocation &inv, std::ostream &out);

} // namespace icctl

#endif
