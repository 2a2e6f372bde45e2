/*
 * intellicache core: guests' misses an unbounded cache stores later.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_deferred.hpp"

#include "ic_check.hpp"

#include <cinttypes>

namespace intellicache {

void DeferredStores::push(std::uint64_t first, std::uint64_t count) {
    IC_CHECK(room(count),
             "%" PRIu64 " clusters deferred with %" PRIu64 " of %" PRIu64
             " slots taken",
             count, ring_.size(), kSlots);
    if (ring_.slots() == 0) {
        ring_.resize(kSlots);
    }
    for (std::uint64_t i = 0; i < count; i++) {
        ring_.push(static_cast<std::uint32_t>(first + i));
    }
}

std::optional<DeferredStores::Run> DeferredStores::take(std::uint64_t max) {
    if (ring_.empty() || max == 0) {
        return std::nullopt;
    }
    Run run{ring_.pop(), 1};
    while (run.count < max && !ring_.empty() &&
           ring_.front() == run.first + run.count) {
        ring_.pop();
        run.count++;
    }
    if (ring_.empty()) {
        ring_ = ClusterRing(); /* the memory of a burst goes back */
    }
    return run;
}

void DeferredStores::clear() {
    ring_ = ClusterRing();
}

} // namespace intellicache
