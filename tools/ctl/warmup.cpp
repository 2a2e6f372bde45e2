/*
 * intellicache-ctl: profile, prefetch and jobs.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "warmup.hpp"

#include "commands.hpp"
#include "daemon_ops.hpp"
#include "host_config.hpp"
#include "qmp_client.hpp"
#include "status_view.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iterator>
#include <ostream>
#include <sstream>
#include <thread>

namespace icctl {

namespace {

/* How often --wait asks the daemon how its job is doing. */
constexpr std::chrono::milliseconds kPollInterval{200};

QmpClient connect(const Invocation &inv) {
    return {inv.qmp_socket, std::chrono::milliseconds(inv.timeout_ms)};
}

std::string percent(std::uint64_t part, std::uint64_t whole) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "%.1f%%",
                  whole != 0 ? 100.0 * static_cast<double>(part) /
                                   static_cast<double>(whole)
                             : 0.0);
    return buf;
}

std::optional<JobInfo> find_job(QmpClient &qmp, const std::string &id) {
    const JsonPtr reply = qmp.execute("query-jobs");
    const std::vector<JobInfo> jobs = parse_jobs(reply.get());
    const auto it = std::find_if(jobs.begin(), jobs.end(),
                                 [&](const JobInfo &j) { return j.id == id; });
    if (it == jobs.end()) {
        return std::nullopt;
    }
    return *it;
}

} // namespace

std::vector<JobInfo> parse_jobs(json_object *reply) {
    std::vector<JobInfo> jobs;
    if (!json_is(reply, json_type_array)) {
        return jobs;
    }
    const std::size_t n = json_object_array_length(reply);
    for (std::size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(reply, i);
        if (!json_is(o, json_type_object)) {
            continue;
        }
        JobInfo j;
        j.id = json_string(o, "id").value_or("");
        j.type = json_string(o, "type").value_or("");
        j.status = json_string(o, "status").value_or("");
        j.current = json_u64(o, "current-progress").value_or(0);
        j.total = json_u64(o, "total-progress").value_or(0);
        j.error = json_string(o, "error");
        jobs.push_back(std::move(j));
    }
    return jobs;
}

std::string jobs_table(const std::vector<JobInfo> &jobs) {
    if (jobs.empty()) {
        return "no jobs\n";
    }
    std::ostringstream out;
    for (const JobInfo &j : jobs) {
        out << j.id << "  " << j.type << "  " << j.status << "  "
            << human_bytes(static_cast<double>(j.current)) << "/"
            << human_bytes(static_cast<double>(j.total)) << " ("
            << percent(j.current, j.total) << ")";
        if (j.error) {
            out << "  error: " << *j.error;
        }
        out << "\n";
    }
    return out.str();
}

std::optional<std::string> job_outcome(const std::vector<JsonPtr> &events,
                                       const std::string &id) {
    for (const JsonPtr &e : events) {
        const auto name = json_string(e.get(), "event");
        json_object *data = json_member(e.get(), "data");
        if (!name || json_string(data, "device") != id) {
            continue;
        }
        if (*name == "BLOCK_JOB_CANCELLED") {
            return std::string("cancelled");
        }
        if (*name == "BLOCK_JOB_COMPLETED") {
            return json_string(data, "error").value_or("");
        }
    }
    return std::nullopt;
}

int run_profile(const Invocation &inv, std::ostream &out) {
    const std::string &action = inv.args.at(0);
    QmpClient qmp = connect(inv);
    if (action == "start") {
        if (inv.args.size() != 3) {
            throw UsageError("profile start: NODE and FILE are needed");
        }
        JsonPtr args(
            json_args({{"node-name", inv.args[1]}, {"filename", inv.args[2]}}));
        qmp.execute("intellicache-profile-start", args.get());
        out << "recording the first reads of " << inv.args[1] << " into "
            << inv.args[2] << "\n";
        return kExitOk;
    }
    if (action == "stop") {
        if (inv.args.size() != 2) {
            throw UsageError("profile stop: NODE is needed");
        }
        JsonPtr args(json_args({{"node-name", inv.args[1]}}));
        qmp.execute("intellicache-profile-stop", args.get());
        out << "profile of " << inv.args[1] << " written\n";
        return kExitOk;
    }
    throw UsageError("profile: unknown action '" + action +
                     "' (start or stop)");
}

int run_prefetch(const Invocation &inv, std::ostream &out) {
    const std::string &node = inv.args.at(0);
    const std::string id = inv.value("job").value_or("prefetch-" + node);
    JsonPtr args(json_args({{"job-id", id}, {"node-name", node}}));
    if (auto profile = inv.value("profile")) {
        json_object_object_add(args.get(), "profile",
                               json_object_new_string(profile->c_str()));
    }
    if (auto speed = inv.value("speed")) {
        const auto bytes = parse_size(*speed);
        if (!bytes) {
            throw UsageError("prefetch: --speed '" + *speed +
                             "' is not a size in bytes per second (e.g. "
                             "200M)");
        }
        json_object_object_add(
            args.get(), "speed",
            json_object_new_int64(static_cast<std::int64_t>(*bytes)));
    }
    QmpClient qmp = connect(inv);
    qmp.execute("intellicache-prefetch", args.get());
    out << "job " << id << " started\n";
    if (!inv.flag("wait")) {
        return kExitOk;
    }
    /* Until the job is gone (it dismisses itself when it ends); how it
     * ended is in the events received meanwhile. */
    std::vector<JsonPtr> events;
    for (;;) {
        const auto job = find_job(qmp, id);
        std::vector<JsonPtr> more = qmp.take_events();
        std::move(more.begin(), more.end(), std::back_inserter(events));
        if (!job) {
            break;
        }
        std::this_thread::sleep_for(kPollInterval);
    }
    const auto outcome = job_outcome(events, id);
    if (!outcome) {
        throw std::runtime_error("job " + id +
                                 " is gone, and how it ended was not seen");
    }
    if (!outcome->empty()) {
        throw std::runtime_error("job " + id + " failed: " + *outcome);
    }
    out << "job " << id << " done\n";
    return kExitOk;
}

int run_jobs(const Invocation &inv, std::ostream &out) {
    QmpClient qmp = connect(inv);
    const JsonPtr reply = qmp.execute("query-jobs");
    out << jobs_table(parse_jobs(reply.get()));
    return kExitOk;
}

} // namespace icctl
