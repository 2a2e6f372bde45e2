/*
 * intellicache core: the max-inflight slots for base reads.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_fetch_slots.hpp"

#include "ic_check.hpp"

#include <algorithm>

namespace intellicache {

bool FetchSlots::take(IcFetchKind kind) {
    switch (kind) {
    case IC_FETCH_DEMAND:
        if (busy_ < limit_) {
            busy_++;
            return true;
        }
        waiting_++;
        return false;
    case IC_FETCH_READ_AHEAD:
        if (waiting_ == 0 && busy_ < limit_ / 2) {
            busy_++;
            return true;
        }
        return false;
    case IC_FETCH_PREFETCH:
        if (waiting_ == 0 && busy_ < prefetch_limit()) {
            busy_++;
            return true;
        }
        return false;
    }
    IC_CHECK(false, "ic_core_slot_take() with unknown kind %d",
             static_cast<int>(kind));
    return false;
}

bool FetchSlots::take_prefetch(std::uint64_t now_ms) {
    if (!guests_active(now_ms)) {
        return take(IC_FETCH_PREFETCH);
    }
    if (waiting_ == 0 && busy_ == 0 && limit_ > 0) {
        busy_++;
        return true;
    }
    return false;
}

std::uint32_t FetchSlots::prefetch_limit() const {
    const std::uint32_t reserve = limit_ >= 2 ? std::max(limit_ / 4, 1U) : 0;
    return limit_ - reserve;
}

bool FetchSlots::put() {
    IC_CHECK(busy_ > 0, "ic_core_slot_put() without a slot taken");
    busy_--;
    if (waiting_ > 0 && busy_ < limit_) {
        waiting_--;
        return true;
    }
    return false;
}

} // namespace intellicache
