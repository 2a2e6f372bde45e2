/*
 * intellicache core: a host-wide budget shared by the caches of several
 * nodes (the intellicache-pool object).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_pool.hpp"

#include "ic_check.hpp"

#include <algorithm>
#include <cinttypes>
#include <tuple>

namespace intellicache {

std::uint64_t PoolBudget::used() const {
    const std::scoped_lock guard(lock_);
    return used_;
}

bool PoolBudget::tight() const {
    const std::scoped_lock guard(lock_);
    return free_bytes() < 2 * headroom();
}

std::size_t PoolBudget::members() const {
    const std::scoped_lock guard(lock_);
    return members_.size();
}

PoolBudget::Member &PoolBudget::member(const void *key) {
    const auto it = std::ranges::find(members_, key, &Member::key);
    IC_CHECK(it != members_.end(), "not a member of the pool");
    return *it;
}

const PoolBudget::Member &PoolBudget::member(const void *key) const {
    const auto it = std::ranges::find(members_, key, &Member::key);
    IC_CHECK(it != members_.end(), "not a member of the pool");
    return *it;
}

void PoolBudget::join(const void *key, void *opaque) {
    const std::scoped_lock guard(lock_);
    IC_CHECK(std::ranges::find(members_, key, &Member::key) == members_.end(),
             "joining a pool twice");
    members_.push_back(Member{key, opaque, 0, 0, false});
}

void PoolBudget::leave(const void *key) {
    const std::scoped_lock guard(lock_);
    const Member &m = member(key);
    used_ -= m.used;
    std::erase_if(members_, [key](const Member &x) { return x.key == key; });
}

bool PoolBudget::take(const void *key, std::uint64_t bytes) {
    const std::scoped_lock guard(lock_);
    Member &m = member(key);
    if (bytes > free_bytes()) {
        return false;
    }
    m.used += bytes;
    used_ += bytes;
    return true;
}

void PoolBudget::force(const void *key, std::uint64_t bytes) {
    const std::scoped_lock guard(lock_);
    Member &m = member(key);
    m.used += bytes;
    used_ += bytes;
}

void PoolBudget::give(const void *key, std::uint64_t bytes) {
    const std::scoped_lock guard(lock_);
    Member &m = member(key);
    IC_CHECK(bytes <= m.used,
             "giving back %" PRIu64 " bytes of a pool member that holds "
             "%" PRIu64,
             bytes, m.used);
    m.used -= bytes;
    used_ -= bytes;
    m.deficit -= std::min(m.deficit, bytes);
}

std::uint64_t PoolBudget::deficit(const void *key) const {
    const std::scoped_lock guard(lock_);
    return member(key).deficit;
}

void PoolBudget::set_reuse_low(const void *key, bool low) {
    const std::scoped_lock guard(lock_);
    member(key).reuse_low = low;
}

std::uint64_t PoolBudget::headroom() const {
    return std::clamp<std::uint64_t>(size_ / 32, 1, kMaxHeadroom);
}

void *PoolBudget::victim() {
    const std::scoped_lock guard(lock_);
    const std::uint64_t free = free_bytes();
    if (free >= headroom()) {
        for (Member &m : members_) {
            m.deficit = 0;
        }
        return nullptr;
    }
    const auto asked = std::ranges::find_if(
        members_, [](const Member &m) { return m.deficit > 0; });
    if (asked != members_.end()) {
        return asked->opaque;
    }
    /* Holding something first, then seldom reused, then holding most. */
    const auto most =
        std::ranges::max_element(members_, {}, [](const Member &m) {
            return std::tuple{m.used > 0, m.reuse_low, m.used};
        });
    if (most == members_.end() || most->used == 0) {
        return nullptr;
    }
    /* Beyond the size (a member joined with more), the excess too. */
    const std::uint64_t over = used_ > size_ ? used_ - size_ : 0;
    most->deficit = std::min(most->used, over + 2 * headroom() - free);
    return most->opaque;
}

} // namespace intellicache
