/*
 * intellicache core: the health of the base, and when a miss is retried.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_base_health.hpp"

#include <algorithm>
#include <cerrno>

namespace intellicache {

bool BaseHealth::note(IcBaseEvent ev) {
    IcBaseState next = state_;

    switch (ev) {
    case IC_BASE_READ_OK:
        next = IC_BASE_UP;
        break;
    case IC_BASE_READ_FAILED:
    case IC_BASE_READ_SLOW:
        /* A failing probe or a late failure does not bring DOWN back. */
        if (state_ == IC_BASE_UP) {
            next = IC_BASE_RETRYING;
        }
        break;
    case IC_BASE_GAVE_UP:
    case IC_BASE_DETACHED:
        next = IC_BASE_DOWN;
        break;
    }
    const bool changed = next != state_;
    state_ = next;
    return changed;
}

bool BaseHealth::fails_fast(std::uint64_t miss_timeout_ms) const {
    return state_ == IC_BASE_DOWN && miss_timeout_ms > 0;
}

IcHealthTick BaseHealth::tick(std::uint64_t now_ms,
                              std::optional<std::uint64_t> oldest_pending_ms,
                              bool probe_running) const {
    IcHealthTick out{};

    out.slow = oldest_pending_ms && now_ms >= *oldest_pending_ms &&
               now_ms - *oldest_pending_ms >= IC_BASE_SLOW_MS;
    /* Once a second: the tick runs four times as often, for deadlines. */
    const bool due = !last_probe_ms_ || now_ms < *last_probe_ms_ ||
                     now_ms - *last_probe_ms_ >= IC_PROBE_INTERVAL_MS;
    out.probe =
        state_ == IC_BASE_DOWN && !oldest_pending_ms && !probe_running && due;
    return out;
}

bool RetryPolicy::transient(int err) {
    switch (err) {
    /* What transports and network file systems report for a lost peer. */
    case EIO:
    case ETIMEDOUT:
    case ENOTCONN:
    case ECONNRESET:
    case ECONNREFUSED:
    case ECONNABORTED:
    case EPIPE:
    case ESHUTDOWN:
    case EHOSTUNREACH:
    case EHOSTDOWN:
    case ENETUNREACH:
    case ENETDOWN:
    case ENETRESET:
    case ENOLINK:
    case EAGAIN:
    case EINTR:
    /* Buffers of a fetch: memory comes back as fetches end. */
    case ENOMEM:
        return true;
    default:
        return false;
    }
}

std::optional<std::uint64_t> RetryPolicy::delay_ms(int err, unsigned attempt,
                                                   std::uint64_t waited_ms,
                                                   std::uint64_t timeout_ms) {
    if (!transient(err) || attempt == 0 || waited_ms >= timeout_ms) {
        return std::nullopt;
    }
    /* 100 ms << (attempt - 1), without overflowing the shift. */
    const unsigned doublings = std::min(attempt - 1, 16U);
    const std::uint64_t backoff = std::min<std::uint64_t>(
        static_cast<std::uint64_t>(IC_RETRY_FIRST_MS) << doublings,
        IC_RETRY_MAX_MS);
    return std::min(backoff, timeout_ms - waited_ms);
}

} // namespace intellicache
