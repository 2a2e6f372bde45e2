/*
 * intellicache core: splitting a guest read into hits, fetches and waits.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_planner.hpp"

#include <algorithm>

namespace intellicache {

std::size_t Planner::plan(std::uint64_t offset, std::uint64_t bytes,
                          std::span<IcSegment> segs, PlanCounters &counters) {
    const std::uint64_t base_size = geometry_.base_size();
    if (bytes == 0 || offset >= base_size || segs.empty()) {
        return 0;
    }
    const std::uint64_t req_end = offset + std::min(bytes, base_size - offset);
    const std::uint64_t last = geometry_.cluster_of(req_end - 1);

    std::size_t n = 0;
    std::uint64_t pos = offset; /* start of the next segment */
    while (pos < req_end && n < segs.size()) {
        const std::uint64_t c = geometry_.cluster_of(pos);
        const std::uint64_t left = last - c + 1; /* clusters to plan */
        IcSegment &seg = segs[n];
        seg = IcSegment{};
        seg.offset = pos;

        if (present_.test(c)) {
            /* Checked first: a present cluster is never in flight. */
            const std::uint64_t run = present_.run_length(c, true, left);
            seg.kind = IC_SEG_HIT;
            seg.bytes = std::min(req_end, cluster_bytes_end(c, run)) - pos;
            seg.cache_offset = geometry_.cache_offset(pos);
            counters.hit_bytes += seg.bytes;
        } else {
            const auto near = inflight_.around(c);
            const Fetch *fetch = near.covering;
            if (fetch != nullptr) {
                seg.kind = IC_SEG_WAIT;
                seg.opaque = fetch->opaque;
            } else {
                /* Coalesce absent clusters that nobody fetches yet, up to
                 * the next fetch in flight and the fetch size limit. */
                std::uint64_t limit = std::min(left, max_fetch_clusters_);
                limit = std::min(limit, near.next_first - c);
                const std::uint64_t run = present_.run_length(c, false, limit);
                fetch = &inflight_.add(c, run);
                seg.kind = IC_SEG_FETCH;
                counters.fetches++;
            }
            seg.fetch = fetch->id;
            seg.fetch_offset = cluster_bytes_start(fetch->first);
            const std::uint64_t fetch_end =
                cluster_bytes_end(fetch->first, fetch->count);
            seg.fetch_bytes = fetch_end - seg.fetch_offset;
            seg.bytes = std::min(req_end, fetch_end) - pos;
            if (seg.kind == IC_SEG_WAIT) {
                counters.wait_bytes += seg.bytes;
            } else {
                counters.miss_bytes += seg.bytes;
            }
        }
        pos += seg.bytes;
        n++;
    }
    return n;
}

} // namespace intellicache
