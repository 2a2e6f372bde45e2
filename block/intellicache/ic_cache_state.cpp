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
    bool &fact = write ? stopped_ : bypassed_;
    if (fact) {
        return false;
    }
    fact = true;
    /* BYPASSED wins over everything; STOPPED shows only if nothing above
     * it holds (a write failing on a bypassed cache changes nothing the
     * user needs to hear about again). */
    return !write || (!bypassed_ && active_);
}

} // namespace intellicache
