/*
 * intellicache core: the bound of a bounded cache, and freeing clusters to
 * stay within it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_budget.hpp"

#include "ic_check.hpp"
#include "ic_message.hpp"

#include <algorithm>
#include <cinttypes>
#include <new>

namespace intellicache {

std::unique_ptr<CacheBudget> CacheBudget::create(std::uint64_t cluster_count,
                                                 std::uint64_t capacity,
                                                 MessageBuffer &why) {
    IC_CHECK(capacity >= 1, "a cache budget of 0 clusters");
    std::unique_ptr<EvictionPolicy> policy =
        EvictionPolicy::create(cluster_count, capacity, why);
    if (!policy) {
        return nullptr;
    }
    try {
        std::unique_ptr<CacheBudget> budget(
            new CacheBudget(std::move(policy), cluster_count));
        /* Sized once: freeing a batch allocates nothing. */
        budget->chosen_.reserve(kMaxBatch);
        budget->victims_.reserve(kMaxBatch);
        return budget;
    } catch (const std::bad_alloc &) {
        why.set("cannot allocate the eviction state of a cache of %" PRIu64
                " clusters",
                capacity);
        return nullptr;
    }
}

CacheBudget::CacheBudget(std::unique_ptr<EvictionPolicy> policy,
                         std::uint64_t cluster_count)
    : policy_(std::move(policy)), cluster_count_(cluster_count) {}

CacheBudget::~CacheBudget() {
    if (pool_ != nullptr) {
        pool_->leave(this);
    }
}

void CacheBudget::set_pool(PoolBudget *pool, void *opaque,
                           std::uint32_t cluster_bytes) {
    if (pool == pool_) {
        return;
    }
    if (pool_ != nullptr) {
        pool_->leave(this);
    }
    pool_ = pool;
    cluster_bytes_ = cluster_bytes;
    if (pool_ != nullptr) {
        pool_->join(this, opaque);
        pool_force(used());
        pool_reuse_low_ = false;
        note_reuse();
    }
}

void CacheBudget::note_reuse() {
    const bool low = policy_->reuse_low();
    if (pool_ != nullptr && low != pool_reuse_low_) {
        pool_->set_reuse_low(this, low);
        pool_reuse_low_ = low;
    }
}

bool CacheBudget::pool_take(std::uint64_t count) {
    return pool_ == nullptr || pool_->take(this, count * cluster_bytes_);
}

void CacheBudget::pool_force(std::uint64_t count) {
    if (pool_ != nullptr) {
        pool_->force(this, count * cluster_bytes_);
    }
}

void CacheBudget::pool_give(std::uint64_t count) {
    if (pool_ != nullptr) {
        pool_->give(this, count * cluster_bytes_);
    }
}

bool CacheBudget::admit(std::uint64_t first, std::uint64_t count) {
    /*
     * Room to spare: storing needs no eviction, now or by the next batch.
     * A batch leaves twice the headroom free, so a cache that evicts sits
     * within that band of its capacity: there, every store costs one.
     */
    note_reuse();
    const bool room_to_spare =
        (capacity() >= cluster_count_ ||
         used() + count + 2 * headroom() <= capacity()) &&
        pool_excess() == 0 && (pool_ == nullptr || !pool_->tight());
    return room_to_spare || policy_->admit(first, count);
}

bool CacheBudget::reserve(std::uint64_t count) {
    if (used() > capacity() || count > capacity() - used() ||
        !pool_take(count)) {
        return false;
    }
    reserved_ += count;
    return true;
}

void CacheBudget::unreserve(std::uint64_t count) {
    IC_CHECK(count <= reserved_,
             "giving back %" PRIu64 " reserved clusters of %" PRIu64, count,
             reserved_);
    reserved_ -= count;
    pool_give(count);
}

void CacheBudget::stored(std::uint64_t first, std::uint64_t count,
                         bool reserved) {
    if (reserved) {
        /* The room moves from reserved to resident, in the pool too. */
        IC_CHECK(count <= reserved_,
                 "storing %" PRIu64 " reserved clusters of %" PRIu64, count,
                 reserved_);
        reserved_ -= count;
    } else {
        pool_force(count);
    }
    for (std::uint64_t c = first; c < first + count; c++) {
        /*
         * A store admitted before the cache was bounded may not fit: it
         * enters as a loaded cluster would, and the next batch makes room.
         */
        if (resident() < capacity()) {
            policy_->insert(c);
        } else {
            policy_->load(c);
        }
    }
}

void CacheBudget::touch(std::uint64_t first, std::uint64_t count) {
    for (std::uint64_t c = first; c < first + count; c++) {
        policy_->touch(c);
    }
}

/*
 * 1/32 of the capacity: small enough not to waste the cache, large enough
 * that stores still find room while a batch is being freed (a batch takes
 * a metadata sync, two flushes, before its room is free).
 */
std::uint64_t CacheBudget::headroom() const {
    return std::clamp<std::uint64_t>(capacity() / 32, 1, kMaxBatch);
}

std::uint64_t CacheBudget::local_excess() const {
    if (capacity() >= cluster_count_ || used() + headroom() <= capacity()) {
        return 0;
    }
    return used() + 2 * headroom() - capacity();
}

std::uint64_t CacheBudget::pool_excess() const {
    if (pool_ == nullptr) {
        return 0;
    }
    return (pool_->deficit(this) + cluster_bytes_ - 1) / cluster_bytes_;
}

bool CacheBudget::evict_needed() const {
    return !evicting_ && resident() > 0 &&
           (local_excess() > 0 || pool_excess() > 0);
}

std::span<const CacheBudget::Run> CacheBudget::evict_begin() {
    IC_CHECK(evict_needed(), "freeing clusters when no batch is needed");
    /* Leave twice the headroom free, so the next batch is not due at once. */
    const std::uint64_t want =
        std::min(std::max(local_excess(), pool_excess()), kMaxBatch);
    chosen_.clear();
    while (chosen_.size() < want) {
        const std::optional<std::uint64_t> victim = policy_->evict();
        if (!victim) {
            break;
        }
        chosen_.push_back(*victim);
    }
    std::sort(chosen_.begin(), chosen_.end());
    victims_.clear();
    for (const std::uint64_t c : chosen_) {
        if (!victims_.empty() &&
            victims_.back().first + victims_.back().count == c) {
            victims_.back().count++;
        } else {
            victims_.push_back(Run{c, 1});
        }
    }
    freeing_ = chosen_.size();
    evicting_ = true;
    return victims_;
}

bool CacheBudget::freeing(std::uint64_t first, std::uint64_t count) const {
    if (!evicting_ || count == 0) {
        return false;
    }
    /* The first run that ends after @first; it overlaps if it starts
     * before the range ends. */
    const auto it = std::upper_bound(
        victims_.begin(), victims_.end(), first,
        [](std::uint64_t c, const Run &r) { return c < r.first + r.count; });
    return it != victims_.end() && it->first < first + count;
}

void CacheBudget::evict_end() {
    IC_CHECK(evicting_, "ending a batch of freed clusters that never began");
    pool_give(freeing_);
    freeing_ = 0;
    victims_.clear();
    evicting_ = false;
}

} // namespace intellicache
