/*
 * intellicache core: which cached clusters to keep when the cache is full.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_EVICTION_HPP
#define IC_EVICTION_HPP

#include "ic_cluster_ring.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace intellicache {

class MessageBuffer;

/*
 * S3-FIFO (Yang et al., SOSP 2023) over the clusters of one cache: a small
 * FIFO that new clusters enter, a main FIFO for clusters read again, and
 * ghost entries that remember clusters recently evicted from the small
 * FIFO.  A cluster read once (a scan) leaves through the small FIFO without
 * disturbing the main one; a cluster read again moves to main; a cluster
 * that comes back while it is a ghost goes straight to main.  See
 * docs/design.rst, Eviction, for the choice and its figures.
 *
 * The policy only orders clusters; it does not know whether their data is
 * durable, pinned or being freed: the core decides when a cluster enters
 * (insert, load) and frees what evict() returns.  Its state is a hint, not
 * part of the on-disk format: after a restart it is rebuilt by load() from
 * the presence bitmap.
 *
 * Cost: O(1) amortised per call, no allocation after create() except in
 * set_capacity() and in load() beyond the capacity (both rare; they throw
 * std::bad_alloc); touch() is on every hit and is a few instructions.
 * Memory: a few bits per cluster of the base plus a few bytes per resident
 * and ghost cluster; memory_bytes() says how much.
 *
 * Cluster indices are below the @cluster_count given to create() (at most
 * IC_MAX_CLUSTER_COUNT, so they fit 32 bits).  Not thread-safe: the core's
 * caller serialises.
 */
class EvictionPolicy {
public:
    /*
     * A policy for a base of @cluster_count clusters that keeps at most
     * @capacity clusters (>= 1).  nullptr, with a message in @why, if its
     * memory cannot be allocated.
     */
    static std::unique_ptr<EvictionPolicy> create(std::uint64_t cluster_count,
                                                  std::uint64_t capacity,
                                                  MessageBuffer &why);

    std::uint64_t capacity() const;
    /*
     * A new bound (>= 1).  Lowering it below resident() evicts nothing by
     * itself: the caller calls evict() until resident() <= capacity().
     */
    void set_capacity(std::uint64_t capacity);

    /* Clusters inserted or loaded and not evicted since. */
    std::uint64_t resident() const;

    /*
     * Cluster @index was stored in the cache (it must not be resident).  It
     * enters the small FIFO, or the main one if it is a ghost.  The caller
     * keeps resident() <= capacity() by evicting first: insert() itself
     * never evicts.
     */
    void insert(std::uint64_t index);

    /*
     * Cluster @index was found in the cache at open (no history is known):
     * it enters the main FIFO.  Must not be resident.
     */
    void load(std::uint64_t index);

    /*
     * A read hit cluster @index.  No-op unless it is resident (clusters the
     * policy does not track, such as zero fills, may be hit too).
     */
    void touch(std::uint64_t index);

    /*
     * Choose the next cluster to evict and forget it as resident (it may
     * become a ghost).  nullopt when nothing is resident.
     */
    std::optional<std::uint64_t> evict();

    /*
     * Admission, asked when storing the missed clusters [first, first +
     * count) would mean evicting others.  While the misses lately were
     * read again often enough (see note_entry()), everything is admitted,
     * as S3-FIFO does.  Otherwise the workload reads most clusters once
     * (uniform random reads over a base far larger than the cache):
     * storing them costs a write and, later, a hole punch each, and evicts
     * what little is reused.  Then only a miss whose first cluster is a
     * ghost (read recently: this is its second read) is admitted.  A
     * refused miss's clusters become ghosts, so that a second read soon
     * after is stored, and count as clusters that entered and were not
     * read again, so that the reuse of new clusters is still measured.
     */
    bool admit(std::uint64_t first, std::uint64_t count);
    /* Whether admit() refuses misses that are not ghosts. */
    bool reuse_low() const;

    /* Bytes of memory the policy holds. */
    std::uint64_t memory_bytes() const;

private:
    EvictionPolicy(std::uint64_t cluster_count, std::uint64_t capacity);

    /* @index, checked to be a cluster of the base, for @call's message. */
    std::uint32_t checked(std::uint64_t index, const char *call) const;
    /* A cluster's 4 bits of state: where it is and its frequency. */
    std::uint8_t state(std::uint32_t index) const;
    void set_state(std::uint32_t index, std::uint8_t state);

    /*
     * Takes clusters from the head of the small FIFO: those read again
     * move to main, the first one that was not is evicted and becomes a
     * ghost.  nullopt if all of them moved.
     */
    std::optional<std::uint32_t> evict_small();
    /* Takes clusters from the head of main until one was not read again. */
    std::uint32_t evict_main();
    /* @index becomes a ghost, the oldest ghost is forgotten if need be. */
    void remember(std::uint32_t index);
    /* Forgets the ghost of a ghost ring entry, if it is still one. */
    void forget(std::uint32_t index);
    /*
     * The reuse that admission judges by: of the clusters that entered
     * lately or were refused, those read again while in small (their
     * first touch there) or that entered as ghosts (a second read).
     * Counted as clusters enter, are refused and are touched, so a cache
     * that is not evicting (a pool member that others free room for) knows
     * its reuse too.
     */
    void note_entry(bool reused);

    std::uint64_t cluster_count_;
    std::uint64_t capacity_;
    std::uint64_t small_target_; /* evict from small while it holds this */
    std::vector<std::uint8_t> states_; /* two clusters per byte */
    ClusterRing small_;
    ClusterRing main_;
    ClusterRing ghost_;
    /* Clusters entered, and of them read again: halved every kReuseWindow. */
    std::uint32_t entered_ = 0;
    std::uint32_t reused_ = 0;
};

} // namespace intellicache

#endif
