/*
 * intellicache core: layout of a cache file.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_geometry.hpp"

#include "ic_message.hpp"

#include <cinttypes>

namespace intellicache {

namespace {

/*
 * The data area starts at least 1 MiB aligned (and cluster aligned for big
 * clusters) so cluster I/O in the cache file is aligned for O_DIRECT and
 * for the host file system's extents.
 */
constexpr std::uint64_t kDataAlignment = std::uint64_t{1} << 20;

std::uint64_t align_up(std::uint64_t v, std::uint64_t alignment) {
    return (v + alignment - 1) / alignment * alignment;
}

std::uint64_t div_round_up(std::uint64_t v, std::uint64_t d) {
    return v / d + (v % d != 0 ? 1 : 0);
}

} // namespace

std::optional<Geometry> Geometry::compute(std::uint64_t base_size,
                                          std::uint32_t cluster_size,
                                          MessageBuffer &why) {
    /* Shape before range: "3000 is not a power of two" says more than
     * "out of range" would. */
    if (cluster_size != 0 && !std::has_single_bit(cluster_size)) {
        why.set("cluster-size %" PRIu32 " is not a power of two", cluster_size);
        return std::nullopt;
    }
    if (cluster_size < IC_MIN_CLUSTER_SIZE ||
        cluster_size > IC_MAX_CLUSTER_SIZE) {
        why.set("cluster-size %" PRIu32 " is out of range [%u, %u]",
                cluster_size, IC_MIN_CLUSTER_SIZE, IC_MAX_CLUSTER_SIZE);
        return std::nullopt;
    }
    if (base_size == 0) {
        why.set("base size 0 is invalid: the base image is empty");
        return std::nullopt;
    }
    if (base_size > IC_MAX_BASE_SIZE) {
        why.set("base size %" PRIu64 " exceeds the maximum of %" PRIu64
                " bytes",
                base_size, static_cast<std::uint64_t>(IC_MAX_BASE_SIZE));
        return std::nullopt;
    }

    /* No overflow: base_size <= 2^53 keeps every sum below 2^54. */
    IcGeometry g{};
    g.base_size = base_size;
    g.cluster_size = cluster_size;
    g.cluster_count = div_round_up(base_size, cluster_size);
    if (g.cluster_count > IC_MAX_CLUSTER_COUNT) {
        why.set("cluster-size %" PRIu32 " gives %" PRIu64
                " clusters for a base of %" PRIu64
                " bytes, more than the maximum of %" PRIu64
                "; use a larger cluster-size",
                cluster_size, g.cluster_count, base_size,
                static_cast<std::uint64_t>(IC_MAX_CLUSTER_COUNT));
        return std::nullopt;
    }
    g.meta_offset = IC_HEADER_SIZE;
    g.meta_blocks = div_round_up(g.cluster_count, kMetaBlockClusters);
    g.data_offset =
        align_up(g.meta_offset + g.meta_blocks * IC_META_BLOCK_SIZE,
                 std::max<std::uint64_t>(cluster_size, kDataAlignment));
    /* The last cluster gets a full slot even if the base ends inside it. */
    g.file_size = g.data_offset + g.cluster_count * cluster_size;
    return Geometry(g);
}

std::uint32_t Geometry::default_cluster_size(std::uint64_t base_size) {
    std::uint32_t cs = IC_DEFAULT_CLUSTER_SIZE;
    while (cs < IC_MAX_CLUSTER_SIZE &&
           div_round_up(base_size, cs) > IC_DEFAULT_MAX_CLUSTERS) {
        cs *= 2;
    }
    return cs;
}

std::optional<Geometry> Geometry::adopt(const IcGeometry &g) {
    MessageBuffer none(nullptr, 0);
    auto computed = compute(g.base_size, g.cluster_size, none);
    if (!computed || !same_layout(computed->raw(), g)) {
        return std::nullopt;
    }
    return computed;
}

bool same_layout(const IcGeometry &a, const IcGeometry &b) {
    return a.base_size == b.base_size && a.cluster_size == b.cluster_size &&
           a.cluster_count == b.cluster_count &&
           a.meta_offset == b.meta_offset && a.meta_blocks == b.meta_blocks &&
           a.data_offset == b.data_offset && a.file_size == b.file_size;
}

} // namespace intellicache
