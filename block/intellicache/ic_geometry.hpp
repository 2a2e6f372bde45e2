/*
 * intellicache core: layout of a cache file.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_GEOMETRY_HPP
#define IC_GEOMETRY_HPP

#include "intellicache-core.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <optional>

namespace intellicache {

class MessageBuffer;

/* Clusters per metadata block, as a 64-bit value (the C macro is an int
 * expression, and block arithmetic must not be done in int). */
constexpr std::uint64_t kMetaBlockClusters =
    static_cast<std::uint64_t>(IC_META_BLOCK_CLUSTERS);

/*
 * A validated IcGeometry plus the cluster arithmetic everybody needs.
 * Cluster sizes are powers of two, so offsets convert with shifts.
 */
class Geometry {
public:
    /* The layout for a base, or nullopt (and a message) if invalid. */
    static std::optional<Geometry> compute(std::uint64_t base_size,
                                           std::uint32_t cluster_size,
                                           MessageBuffer &why);
    /* See ic_default_cluster_size(). */
    static std::uint32_t default_cluster_size(std::uint64_t base_size);
    /* Accepts @g only if it is exactly what compute() would produce. */
    static std::optional<Geometry> adopt(const IcGeometry &g);

    const IcGeometry &raw() const { return g_; }
    std::uint64_t base_size() const { return g_.base_size; }
    std::uint32_t cluster_size() const { return g_.cluster_size; }
    std::uint64_t cluster_count() const { return g_.cluster_count; }
    std::uint64_t meta_blocks() const { return g_.meta_blocks; }

    std::uint64_t cluster_of(std::uint64_t offset) const {
        return offset >> shift_;
    }
    std::uint64_t cluster_start(std::uint64_t cluster) const {
        return cluster << shift_;
    }
    /* End of the base bytes of clusters [.., cluster): clamped to the base. */
    std::uint64_t clusters_end(std::uint64_t cluster_end) const {
        return std::min(cluster_end << shift_, g_.base_size);
    }

    /*
     * Byte offset in the cache file of the base's byte @offset.  Clusters
     * are direct-mapped (cluster N at data_offset + N * cluster_size), so
     * this is the one place that knows where data lives: HIT segments,
     * store jobs and ic_core_cache_offset() all ask it.
     */
    std::uint64_t cache_offset(std::uint64_t offset) const {
        return g_.data_offset + offset;
    }
    /*
     * The same mapping by cluster, for walking the cache file: the
     * cluster whose slot holds cache file byte @cache_offset (which must
     * be in the data area), and where cluster @cluster's slot starts (the
     * last slot is a whole cluster even if the base ends inside it).
     */
    std::uint64_t slot_of(std::uint64_t cache_offset) const {
        return (cache_offset - g_.data_offset) >> shift_;
    }
    std::uint64_t slot_start(std::uint64_t cluster) const {
        return g_.data_offset + (cluster << shift_);
    }

private:
    explicit Geometry(const IcGeometry &g)
        : g_(g),
          shift_(static_cast<unsigned>(std::countr_zero(g.cluster_size))) {}

    IcGeometry g_;
    unsigned shift_;
};

/* Field-by-field equality of two layouts. */
bool same_layout(const IcGeometry &a, const IcGeometry &b);

} // namespace intellicache

#endif
