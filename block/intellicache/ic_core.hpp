/*
 * intellicache core: the state of one cache, behind the C API.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_CORE_HPP
#define IC_CORE_HPP

#include "intellicache-core.h"

#include "ic_bitmap.hpp"
#include "ic_durability.hpp"
#include "ic_geometry.hpp"
#include "ic_inflight.hpp"
#include "ic_sequential.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

namespace intellicache {

/*
 * Composes the cluster bitmap, the fetches in flight and the durability
 * tracking, and keeps the statistics.  Each method is one C API function;
 * see intellicache-core.h for the contracts.  Calls with ids of fetches
 * that are unknown (or in the wrong state) are ignored: they can only come
 * from a glue bug, and ignoring them keeps the state consistent.
 */
class Core {
public:
    /* nullptr if @g is not exactly a layout ic_geometry_init() computes. */
    static std::unique_ptr<Core> create(const IcGeometry &g,
                                        std::uint64_t instance,
                                        std::uint64_t max_fetch_bytes);

    const IcGeometry &geometry() const { return geometry_.raw(); }

    IcMetaStatus load_meta_block(std::uint64_t index, const std::uint8_t *buf);
    void encode_meta_block(std::uint64_t index, std::uint8_t *out) const;
    std::uint64_t meta_block_offset(std::uint64_t index) const;

    std::size_t plan(std::uint64_t offset, std::uint64_t bytes,
                     std::span<IcSegment> segs);
    void set_read_ahead(std::uint64_t window);
    std::optional<ReadAhead> note_read(std::uint64_t offset,
                                       std::uint64_t bytes) {
        return sequential_.note_read(offset, bytes);
    }
    std::size_t plan_read_ahead(std::uint64_t offset, std::uint64_t bytes,
                                IcSegment &seg);
    void fetch_set_opaque(IcFetchId id, void *opaque);
    void fetch_done(IcFetchId id, bool ok);
    void fetch_stored(IcFetchId id, bool ok);
    void fetch_dropped(IcFetchId id);

    bool sync_begin() { return durability_.sync_begin(); }
    std::size_t sync_blocks(std::span<std::uint64_t> out) const;
    std::size_t sync_block_count() const {
        return durability_.sync_blocks().size();
    }
    void sync_end(bool ok) { durability_.sync_end(ok); }
    bool sync_needed() const { return durability_.sync_needed(); }

    IcStats stats() const;
    bool cluster_present(std::uint64_t index) const {
        return present_.test(index);
    }

    /* See ic_core_present_run(). */
    struct PresentRun {
        bool present;
        std::uint64_t bytes;
    };
    PresentRun present_run(std::uint64_t offset, std::uint64_t bytes) const;

    std::uint64_t max_fetch_clusters() const { return max_fetch_clusters_; }

private:
    Core(const Geometry &geometry, std::uint64_t instance,
         std::uint64_t max_fetch_clusters);

    Geometry geometry_;
    std::uint64_t instance_;
    std::uint64_t max_fetch_clusters_;
    ClusterBitmap present_;
    InflightTable inflight_;
    DurabilityTracker durability_;
    SequentialDetector sequential_;
    IcStats stats_{}; /* only the event counters; the rest is derived */
};

} // namespace intellicache

#endif
