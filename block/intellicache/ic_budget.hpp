/*
 * intellicache core: the bound of a bounded cache, and freeing clusters to
 * stay within it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_BUDGET_HPP
#define IC_BUDGET_HPP

#include "intellicache-core.h"

#include "ic_eviction.hpp"
#include "ic_pool.hpp"

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace intellicache {

class MessageBuffer;

/*
 * Counts the clusters that take room in the cache file and decides when to
 * free some, and which (through the eviction policy).  Room is taken by
 *
 *   resident  clusters stored with data (the policy's clusters)
 *   reserved  clusters admitted to the store pipeline, not yet stored
 *   freeing   clusters of the batch being freed, until their holes are
 *             punched
 *
 * and used() = resident + reserved + freeing never exceeds capacity():
 * reserve() refuses what does not fit, and the caller then does not store
 * it.  Clusters recorded as zeros take no room and are not counted.
 *
 * Freeing is one batch at a time (see Core::evict_begin() for the order of
 * the steps that make it crash-safe).  A batch starts when less than the
 * headroom (1/32 of the capacity, at most kMaxBatch) is left, so stores
 * still fit while it runs, and frees enough to leave twice the headroom.
 *
 * A member of a pool (PoolBudget) also takes its room from the pool, and
 * frees what the pool asks of it (its deficit) as well.
 */
class CacheBudget {
public:
    /* Clusters freed by one batch, at most: one metadata sync each. */
    static constexpr std::uint64_t kMaxBatch = IC_EVICT_BATCH;

    /* Consecutive clusters [first, first + count). */
    struct Run {
        std::uint64_t first;
        std::uint64_t count;
    };

    /*
     * A budget of @capacity clusters (>= 1) over a base of @cluster_count
     * clusters; nullptr and a message if it cannot be allocated.
     */
    static std::unique_ptr<CacheBudget> create(std::uint64_t cluster_count,
                                               std::uint64_t capacity,
                                               MessageBuffer &why);

    ~CacheBudget();
    CacheBudget(const CacheBudget &) = delete;
    CacheBudget &operator=(const CacheBudget &) = delete;

    /*
     * Be a member of @pool (nullptr: of none), known to it as @opaque,
     * with clusters of @cluster_bytes.  What is held now leaves the old
     * pool and counts in the new one at once, even beyond its size (the
     * new pool then asks for room).  Left when destroyed.
     */
    void set_pool(PoolBudget *pool, void *opaque, std::uint32_t cluster_bytes);

    std::uint64_t capacity() const { return policy_->capacity(); }
    /* A new capacity (>= 1); above used() the next batch frees the rest. */
    void set_capacity(std::uint64_t capacity) {
        policy_->set_capacity(capacity);
    }

    std::uint64_t resident() const { return policy_->resident(); }
    std::uint64_t used() const { return resident() + reserved_ + freeing_; }
    std::uint64_t memory_bytes() const {
        return policy_->memory_bytes() + victims_.capacity() * sizeof(Run);
    }

    /*
     * Whether to store the missed clusters [first, first + count): always
     * while there is room to spare, else as the eviction policy admits
     * (EvictionPolicy::admit()).
     */
    bool admit(std::uint64_t first, std::uint64_t count);
    /* Whether the eviction policy refuses misses that are not ghosts. */
    bool reuse_low() const { return policy_->reuse_low(); }
    /* Take room for @count clusters about to be stored; false if none. */
    bool reserve(std::uint64_t count);
    /* Give back room reserved for clusters that were not stored. */
    void unreserve(std::uint64_t count);
    /*
     * Clusters [first, first + count) were stored: resident.  @reserved:
     * their room was reserved (a fetch admitted before the cache was
     * bounded was not).
     */
    void stored(std::uint64_t first, std::uint64_t count, bool reserved);
    /* Cluster @index was found stored at open (before set_pool()). */
    void load(std::uint64_t index) { policy_->load(index); }
    /*
     * A read reused clusters [first, first + count).  The core does not
     * pass the first pass over data loaded ahead (see Core::note_hit()).
     */
    void touch(std::uint64_t first, std::uint64_t count);

    /*
     * Whether a batch should be freed now (none is being freed).  Never
     * while the capacity holds the whole base: there is nothing to make
     * room for.
     */
    bool evict_needed() const;
    /*
     * Choose the next batch (evict_needed() must be true): its clusters
     * leave the policy and count as freeing until evict_end().  Returns
     * them as runs in cluster order.
     */
    std::span<const Run> evict_begin();
    /* The batch being freed, as evict_begin() returned it. */
    std::span<const Run> victims() const { return victims_; }
    /* Whether a batch is being freed. */
    bool evicting() const { return evicting_; }
    /* Whether [first, first + count) overlaps the batch being freed. */
    bool freeing(std::uint64_t first, std::uint64_t count) const;
    /* The batch's clusters are freed: their room is available again. */
    void evict_end();

private:
    CacheBudget(std::unique_ptr<EvictionPolicy> policy,
                std::uint64_t cluster_count);
    std::uint64_t headroom() const;
    /* Clusters to free for the node's own bound, 0 if none. */
    std::uint64_t local_excess() const;
    /* Clusters to free for the pool, 0 if none (or no pool). */
    std::uint64_t pool_excess() const;
    /* Tells the pool whether the policy finds reuse low, if that changed. */
    void note_reuse();
    /* Room of @count clusters in the pool: taken, forced, given back. */
    bool pool_take(std::uint64_t count);
    void pool_force(std::uint64_t count);
    void pool_give(std::uint64_t count);

    std::unique_ptr<EvictionPolicy> policy_;
    std::uint64_t cluster_count_; /* of the base */
    PoolBudget *pool_ = nullptr;
    std::uint64_t cluster_bytes_ = 0;
    std::uint64_t reserved_ = 0;
    std::uint64_t freeing_ = 0;
    bool evicting_ = false;
    bool pool_reuse_low_ = false;       /* what the pool was told last */
    std::vector<std::uint64_t> chosen_; /* scratch of evict_begin() */
    std::vector<Run> victims_;          /* the batch, in cluster order */
};

} // namespace intellicache

#endif
