/*
 * intellicache core: whether the cache is used, and how.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_CACHE_STATE_HPP
#define IC_CACHE_STATE_HPP

#include "intellicache-core.h"

namespace intellicache {

/*
 * Three independent facts, each set by its own event, and the one state
 * they give (IcCacheState):
 *
 *   bypassed  a read of the cache file failed (until the node is reopened)
 *   inactive  the node is inactive (set_active(false) until set_active(true))
 *   stopped   a write into the cache file failed (until reopened)
 *
 * Precedence: BYPASSED, then INACTIVE, then STOPPED, then CACHING.  Each
 * state allows less than the next: BYPASSED serves nothing from the cache,
 * INACTIVE and STOPPED serve hits but write nothing (INACTIVE not even
 * metadata), so the strongest restriction wins.  Keeping the facts apart
 * rather than one enum means reactivating a node whose cache write failed
 * meanwhile gives STOPPED, not CACHING.
 */
class CacheState {
public:
    IcCacheState state() const;
    bool caching() const { return state() == IC_CACHE_CACHING; }
    bool active() const { return active_; }

    /* A read (@write false) or write on the cache file failed; true if
     * state() changed. */
    bool failed(bool write);

    void set_active(bool active) { active_ = active; }

private:
    bool bypassed_ = false;
    bool stopped_ = false;
    bool active_ = true;
};

} // namespace intellicache

#endif
