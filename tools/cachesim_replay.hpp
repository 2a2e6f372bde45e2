/*
 * ic-cachesim: a workload as a sequence of cluster reads, and the policies
 * that replay it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef CACHESIM_REPLAY_HPP
#define CACHESIM_REPLAY_HPP

#include "cachesim_workload.hpp"

#include "ic_eviction.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace cachesim {

/*
 * The reads of a workload cut at cluster boundaries: a request that spans
 * several clusters is one read of each (the bytes of the request in it).
 * Clusters are also numbered densely (in order of first read), so that the
 * reference policies size their arrays by the clusters read, not by the
 * base.
 */
struct Replay {
    std::uint64_t cluster_count = 0;      /* of the base */
    std::vector<std::uint32_t> cluster;   /* per read: its cluster */
    std::vector<std::uint32_t> dense;     /* per read: 0.. per distinct one */
    std::vector<std::uint32_t> bytes;     /* per read: bytes of the request */
    std::vector<std::size_t> request_end; /* per request: end in the above */
    std::size_t distinct = 0;
};

Replay flatten(const Workload &w, std::uint64_t cluster_size);

/* One simulated cache of @capacity clusters. */
class SimCache {
public:
    SimCache() = default;
    SimCache(const SimCache &) = delete;
    SimCache &operator=(const SimCache &) = delete;
    SimCache(SimCache &&) = delete;
    SimCache &operator=(SimCache &&) = delete;
    virtual ~SimCache() = default;

    /* Read number @pos of the replay: true on a hit.  A miss makes the
     * cluster cached, evicting one first if the cache is full. */
    virtual bool access(std::size_t pos) = 0;
};

/*
 * The core's policy, driven as the core drives it: touch() on a hit; on a
 * miss evict() when full, then insert().  Presence is the core's bitmap.
 * Without @repeat_touch, a hit in the same cluster as the read before it
 * (a read continuing inside one cluster) is not touch()ed.
 */
std::unique_ptr<SimCache>
make_s3fifo(const Replay &r, std::unique_ptr<intellicache::EvictionPolicy> p,
            bool repeat_touch = true);
/* Evicts the least recently read cluster. */
std::unique_ptr<SimCache> make_lru(const Replay &r, std::uint64_t capacity);
/* Evicts the cluster cached first. */
std::unique_ptr<SimCache> make_fifo(const Replay &r, std::uint64_t capacity);
/* SIEVE (Zhang et al., NSDI 2024). */
std::unique_ptr<SimCache> make_sieve(const Replay &r, std::uint64_t capacity);
/*
 * Belady's MIN, offline: the optimum of caches that may refuse a miss, or,
 * with @store_every_miss, of caches that store every one (demand paging).
 */
std::unique_ptr<SimCache> make_min(const Replay &r, std::uint64_t capacity,
                                   bool store_every_miss = false);

struct Counts {
    std::uint64_t requests = 0;
    std::uint64_t request_hits = 0;
    std::uint64_t bytes = 0;
    std::uint64_t hit_bytes = 0;

    void add(bool all_hit, std::uint64_t n, std::uint64_t hit) {
        requests++;
        request_hits += all_hit ? 1 : 0;
        bytes += n;
        hit_bytes += hit;
    }
    double request_ratio() const {
        return requests != 0 ? static_cast<double>(request_hits) /
                                   static_cast<double>(requests)
                             : 0.0;
    }
    double byte_ratio() const {
        return bytes != 0
                   ? static_cast<double>(hit_bytes) / static_cast<double>(bytes)
                   : 0.0;
    }
};

struct PolicyResult {
    std::string name;
    Counts all;
    Counts measured;
};

/*
 * Replays @r through @cache; requests from @measured_from on are counted
 * in PolicyResult.measured too.
 */
PolicyResult replay(const std::string &name, SimCache &cache, const Replay &r,
                    std::size_t measured_from);

} // namespace cachesim

#endif
