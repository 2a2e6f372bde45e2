/*
 * intellicache core: how often the clusters an unbounded cache stores are
 * read again.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_reuse_meter.hpp"

#include <algorithm>

namespace intellicache {

bool ReuseMeter::sampled(std::uint64_t index) {
    /*
     * Fibonacci hashing: neighbouring clusters land far apart, so a
     * sequential run is sampled as evenly as random reads are.
     */
    return ((index * 0x9E3779B97F4A7C15ULL) >> 60) == 0;
}

void ReuseMeter::entered(std::uint64_t index) {
    if (!sampled(index)) {
        return;
    }
    tracked_[next_] = static_cast<std::uint32_t>(index);
    next_ = (next_ + 1) % kTracked;
    entered_++;
    if (entered_ >= kWindow) {
        entered_ /= 2;
        reused_ /= 2;
    }
}

void ReuseMeter::read(std::uint64_t index) {
    if (!sampled(index)) {
        return;
    }
    std::uint32_t *const end = tracked_.data() + tracked_.size();
    std::uint32_t *const it =
        std::find(tracked_.data(), end, static_cast<std::uint32_t>(index));
    if (it != end) {
        /* Counted once: a cluster read ten times is one reuse. */
        *it = kNone;
        reused_++;
    }
}

} // namespace intellicache
