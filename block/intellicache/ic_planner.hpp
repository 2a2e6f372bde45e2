/*
 * intellicache core: splitting a guest read into hits, fetches and waits.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_PLANNER_HPP
#define IC_PLANNER_HPP

#include "intellicache-core.h"

#include "ic_bitmap.hpp"
#include "ic_geometry.hpp"
#include "ic_inflight.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

namespace intellicache {

/* What one plan contributed to the statistics. */
struct PlanCounters {
    std::uint64_t hit_bytes = 0;
    std::uint64_t miss_bytes = 0;
    std::uint64_t wait_bytes = 0;
    std::uint64_t fetches = 0;
};

/*
 * Implements ic_core_plan() over the core's state.  Cheap to construct (it
 * only holds references), so the core makes one per call.  Never allocates
 * unless it registers a new fetch: the all-hit path is allocation free.
 */
class Planner {
public:
    Planner(const Geometry &geometry, const ClusterBitmap &present,
            InflightTable &inflight, std::uint64_t max_fetch_clusters)
        : geometry_(geometry), present_(present), inflight_(inflight),
          max_fetch_clusters_(max_fetch_clusters) {}

    /*
     * Plans [offset, offset + bytes) into @segs; returns the number of
     * segments written.  A request reaching past the base is clamped to it.
     */
    std::size_t plan(std::uint64_t offset, std::uint64_t bytes,
                     std::span<IcSegment> segs, PlanCounters &counters);

private:
    /* Byte range of clusters [first, first + count), clamped to the base. */
    std::uint64_t cluster_bytes_start(std::uint64_t first) const {
        return geometry_.cluster_start(first);
    }
    std::uint64_t cluster_bytes_end(std::uint64_t first,
                                    std::uint64_t count) const {
        return geometry_.clusters_end(first + count);
    }

    const Geometry &geometry_;
    const ClusterBitmap &present_;
    InflightTable &inflight_;
    std::uint64_t max_fetch_clusters_;
};

} // namespace intellicache

#endif
