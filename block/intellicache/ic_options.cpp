/*
 * intellicache core: the node's options, checked and completed.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_options.hpp"

#include "ic_message.hpp"

#include <algorithm>
#include <bit>
#include <cinttypes>

namespace intellicache {

namespace {

/* The limits as 64-bit values: the macros are unsigned int expressions. */
constexpr auto kMaxClusterSize =
    static_cast<std::uint64_t>(IC_MAX_CLUSTER_SIZE);
constexpr auto kDefaultMaxFetch =
    static_cast<std::uint64_t>(IC_DEFAULT_MAX_FETCH);
constexpr auto kMaxFetchLimit = static_cast<std::uint64_t>(IC_MAX_FETCH_LIMIT);
constexpr auto kMaxReadAhead = static_cast<std::uint64_t>(IC_MAX_READ_AHEAD);
/* The default scan-threshold is this fraction of cache-size. */
constexpr std::uint64_t kScanFraction = 8;

bool valid_cluster_size(std::uint64_t cs) {
    return std::has_single_bit(cs) && cs >= IC_MIN_CLUSTER_SIZE &&
           cs <= kMaxClusterSize;
}

} // namespace

bool Options::check(IcSettings &out, MessageBuffer &why) const {
    out = IcSettings{};
    if (opts_.has_cluster_size) {
        /* 0 is refused too: "the default" is expressed by leaving it out. */
        if (!valid_cluster_size(opts_.cluster_size)) {
            why.set("cluster-size must be a power of two from %u to %u, "
                    "not %" PRIu64,
                    IC_MIN_CLUSTER_SIZE, IC_MAX_CLUSTER_SIZE,
                    opts_.cluster_size);
            return false;
        }
        out.cluster_size = static_cast<std::uint32_t>(opts_.cluster_size);
    }

    out.max_inflight = IC_DEFAULT_MAX_INFLIGHT;
    if (opts_.has_max_inflight) {
        if (opts_.max_inflight < 1 ||
            opts_.max_inflight > IC_MAX_INFLIGHT_LIMIT) {
            why.set("max-inflight must be from 1 to %u, not %" PRIu64,
                    IC_MAX_INFLIGHT_LIMIT, opts_.max_inflight);
            return false;
        }
        out.max_inflight = static_cast<std::uint32_t>(opts_.max_inflight);
    }

    if (opts_.has_max_fetch) {
        /*
         * 0 is refused rather than taken as the default: the schema
         * documents no such meaning, and for read-ahead 0 means "none", so
         * a silent default here would surprise.
         */
        if (opts_.max_fetch == 0 || opts_.max_fetch > kMaxFetchLimit) {
            why.set("max-fetch must be a multiple of the cluster size from "
                    "one cluster to %u, not %" PRIu64,
                    IC_MAX_FETCH_LIMIT, opts_.max_fetch);
            return false;
        }
        out.max_fetch = opts_.max_fetch;
    }

    if (opts_.has_read_ahead) {
        if (opts_.read_ahead > kMaxReadAhead) {
            why.set("read-ahead must be at most %u, not %" PRIu64,
                    IC_MAX_READ_AHEAD, opts_.read_ahead);
            return false;
        }
        out.read_ahead = opts_.read_ahead;
    }

    out.miss_timeout_ms = IC_DEFAULT_MISS_TIMEOUT * UINT64_C(1000);
    if (opts_.has_miss_timeout) {
        if (opts_.miss_timeout > IC_MAX_MISS_TIMEOUT) {
            why.set("miss-timeout must be from 0 to %u seconds, not %" PRIu64,
                    IC_MAX_MISS_TIMEOUT, opts_.miss_timeout);
            return false;
        }
        out.miss_timeout_ms = opts_.miss_timeout * 1000;
    }

    /* Whether cache-size fits the cluster size is for resolve(). */
    if (opts_.has_cache_size) {
        if (opts_.cache_size == 0) {
            why.set("cache-size must be at least one cluster, not 0 (leave "
                    "it out for a cache as large as the base)");
            return false;
        }
        out.cache_size = opts_.cache_size;
    }
    if (opts_.has_scan_threshold) {
        if (!opts_.has_cache_size && opts_.pool_size == 0) {
            why.set("scan-threshold applies to a bounded cache only: set "
                    "cache-size or pool too");
            return false;
        }
        out.scan_threshold = opts_.scan_threshold;
    }
    return true;
}

bool Options::resolve(IcSettings &set, std::uint32_t cluster_size,
                      MessageBuffer &why) const {
    if (!check(set, why)) {
        return false;
    }
    if (!valid_cluster_size(cluster_size)) {
        why.set("cluster size %" PRIu32 " is not a power of two from %u to %u",
                cluster_size, IC_MIN_CLUSTER_SIZE, IC_MAX_CLUSTER_SIZE);
        return false;
    }
    set.cluster_size = cluster_size;

    if (!opts_.has_max_fetch) {
        set.max_fetch = std::max<std::uint64_t>(kDefaultMaxFetch, cluster_size);
    } else if (set.max_fetch % cluster_size != 0) {
        why.set("max-fetch %" PRIu64 " is not a multiple of the cluster size "
                "%" PRIu32,
                set.max_fetch, cluster_size);
        return false;
    }

    /* Two of the largest fetches ahead of each sequential reader. */
    if (!opts_.has_read_ahead) {
        set.read_ahead = 2 * set.max_fetch;
    }

    if (set.cache_size != 0 && set.cache_size < cluster_size) {
        why.set("cache-size %" PRIu64 " is smaller than one cluster (%" PRIu32
                " bytes)",
                set.cache_size, cluster_size);
        return false;
    }
    /*
     * A stream that reads an eighth of the cache (or of the pool, for a
     * member bounded by it only) would, stored, push out as much of what
     * is read again; beyond that it is a scan.
     */
    if (!opts_.has_scan_threshold) {
        const std::uint64_t bound =
            set.cache_size != 0 ? set.cache_size : opts_.pool_size;
        set.scan_threshold = bound / kScanFraction;
    }

    /* No overflow: at most 1024 x 64 MiB. */
    const std::uint64_t memory = set.max_inflight * set.max_fetch;
    if (memory > IC_MAX_FETCH_MEMORY) {
        why.set("max-inflight x max-fetch = %" PRIu32 " x %" PRIu64
                " = %" PRIu64 " exceeds %" PRIu64
                " bytes of fetch buffers: lower max-inflight or max-fetch",
                set.max_inflight, set.max_fetch, memory,
                static_cast<std::uint64_t>(IC_MAX_FETCH_MEMORY));
        return false;
    }
    return true;
}

} // namespace intellicache
