/*
 * intellicache core: whether the cache is used, and how.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_cache_state.hpp"

namespace intellicache {

IcCacheState CacheState::state() const {
    if (bypassed_) {
        return IC_CACHE_BYPASSED;
    }
    if (!active_) {
        return IC_CACHE_INACTIVE;
    }
    if (stopped_) {
        return IC_CACHE_STOPPED;
    }
    return IC_CACHE_CACHING;
}

bool CacheState::failed(bool write) {
    const IcCacheState before = state();
    if (write) {
        stopped_ = true;
    } else {
        bypassed_ = true;
    }
    /* A write failing on a bypassed cache changes nothing visible: the
     * user was already told that the cache is not used. */
    return state() != before;
}

} // namespace intellicache
