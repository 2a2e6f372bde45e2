/*
 * intellicache-ctl trace: list and choose the daemon's trace events at
 * run time (trace-event-get-state, trace-event-set-state), which
 * qemu-storage-daemon has with this project's QEMU patch 0006.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ICCTL_TRACE_HPP
#define ICCTL_TRACE_HPP

#include "args.hpp"
#include "json.hpp"

#include <cstddef>
#include <iosfwd>
#include <string>
#include <vector>

namespace icctl {

/* Events chosen when none is named. */
inline constexpr const char *kTracePattern = "intellicache_*";

/* One trace event as trace-event-get-state reports it. */
struct TraceEvent {
    std::string name;
    std::string state; /* "enabled", "disabled" or "unavailable" */
};

/* The events of a trace-event-get-state reply, sorted by name. */
std::vector<TraceEvent> parse_trace_events(json_object *reply);

/* One line per event: its name, then its state, in aligned columns. */
std::string trace_table(const std::vector<TraceEvent> &events);

/* How many of @events are in @state. */
std::size_t count_state(const std::vector<TraceEvent> &events,
                        const std::string &state);

/* intellicache-ctl trace [PATTERN] [--on | --off] */
int run_trace(const Invocation &inv, std::ostream &out);

} // namespace icctl

#endif
