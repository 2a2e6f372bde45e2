/*
 * intellicache-ctl: trace.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "trace.hpp"

#include "commands.hpp"
#include "daemon_ops.hpp"
#include "qmp_client.hpp"

#include <algorithm>
#include <chrono>
#include <ostream>

namespace icctl {

namespace {

/* Whether the daemon has @command (query-commands). */
bool has_command(QmpClient &qmp, const std::string &command) {
    const JsonPtr reply = qmp.execute("query-commands");
    const std::size_t n = json_object_array_length(reply.get());
    for (std::size_t i = 0; i < n; i++) {
        if (json_string(json_object_array_get_idx(reply.get(), i), "name") ==
            command) {
            return true;
        }
    }
    return false;
}

std::vector<TraceEvent> get_state(QmpClient &qmp, const std::string &pattern) {
    JsonPtr args(json_args({{"name", pattern}}));
    const JsonPtr reply = qmp.execute("trace-event-get-state", args.get());
    return parse_trace_events(reply.get());
}

} // namespace

std::vector<TraceEvent> parse_trace_events(json_object *reply) {
    std::vector<TraceEvent> events;
    const std::size_t n =
        reply != nullptr && json_object_is_type(reply, json_type_array) != 0
            ? json_object_array_length(reply)
            : 0;
    for (std::size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(reply, i);
        const auto name = json_string(e, "name");
        const auto state = json_string(e, "state");
        if (name && state) {
            events.push_back({*name, *state});
        }
    }
    std::sort(events.begin(), events.end(),
              [](const TraceEvent &a, const TraceEvent &b) {
                  return a.name < b.name;
              });
    return events;
}

std::string trace_table(const std::vector<TraceEvent> &events) {
    std::size_t width = 0;
    for (const TraceEvent &e : events) {
        width = std::max(width, e.name.size());
    }
    std::string text;
    for (const TraceEvent &e : events) {
        text += e.name + std::string(width + 2 - e.name.size(), ' ') + e.state +
                "\n";
    }
    return text;
}

std::size_t count_state(const std::vector<TraceEvent> &events,
                        const std::string &state) {
    return static_cast<std::size_t>(
        std::count_if(events.begin(), events.end(),
                      [&](const TraceEvent &e) { return e.state == state; }));
}

int run_trace(const Invocation &inv, std::ostream &out) {
    const bool on = inv.flag("on");
    const bool off = inv.flag("off");
    if (on && off) {
        throw UsageError("trace: --on and --off together");
    }
    const std::string pattern =
        inv.args.empty() ? std::string(kTracePattern) : inv.args.at(0);
    QmpClient qmp(inv.qmp_socket, std::chrono::milliseconds(inv.timeout_ms));
    if (!has_command(qmp, "trace-event-set-state")) {
        throw QmpError("the daemon at " + inv.qmp_socket +
                       " cannot choose trace events at run time (a "
                       "qemu-storage-daemon without intellicache's QEMU "
                       "patch 0006): start it with --trace '" +
                       pattern + "'");
    }
    const std::vector<TraceEvent> before = get_state(qmp, pattern);
    if (before.empty()) {
        throw QmpError("no trace event matches '" + pattern + "'");
    }
    if (!on && !off) {
        out << trace_table(before);
        return kExitOk;
    }
    JsonPtr args(json_args({{"name", pattern}}));
    json_object_object_add(args.get(), "enable",
                           json_object_new_boolean(on ? 1 : 0));
    json_object_object_add(args.get(), "ignore-unavailable",
                           json_object_new_boolean(1));
    qmp.execute("trace-event-set-state", args.get());
    const std::vector<TraceEvent> now = get_state(qmp, pattern);
    out << (on ? "enabled " : "disabled ")
        << count_state(now, on ? "enabled" : "disabled") << " of " << now.size()
        << " trace events matching " << pattern
        << (on ? ": they print to the daemon's stderr, or to its --trace "
                 "file="
               : "")
        << "\n";
    return kExitOk;
}

} // namespace icctl
