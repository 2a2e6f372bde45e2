/*
 * intellicache core: the fetches in flight.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_INFLIGHT_HPP
#define IC_INFLIGHT_HPP

#include "intellicache-core.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_map>

namespace intellicache {

/* See Core for the calls that move a fetch from one state to the next. */
enum class FetchState {
    pending, /* the base read is running */
    done,    /* data read, in the glue's buffer */
    queued,  /* admitted to the store queue, waiting for a writer */
    writing, /* handed to a store writer */
};

/* The state's name, for messages. */
const char *fetch_state_name(FetchState state);

struct Fetch {
    IcFetchId id;
    std::uint64_t first; /* first cluster */
    std::uint64_t count; /* clusters */
    FetchState state;
    void *opaque;  /* the glue's object, handed to waiters */
    bool zeros;    /* a zero fill: nothing is read, zeros are written */
    bool scan;     /* read by a scan: a bounded cache does not store it */
    bool reserved; /* holds room in the cache's budget (store_admit) */
    bool unasked;  /* read-ahead or prefetch: no reader asked for it yet */
    bool prefetch; /* the prefetch job's, or a prefetch read's: stored
                    * whatever admission says (a user asked for it) */
    bool joined;   /* another guest read waits on it: read twice already */
    /*
     * Of an unasked fetch: the clusters before this one were read through
     * to their end by readers that joined it (Core::plan()), so they are
     * not data loaded ahead of a reader any more when stored.
     */
    std::uint64_t read_through;
};

/*
 * Fetches from registration until they are forgotten (failed or stored).
 * Fetches never overlap, so keying them by first cluster finds the fetch
 * covering any cluster in O(log n).  Ids grow monotonically from 1 and are
 * never reused, so a stale id from the glue can never hit a newer fetch.
 */
class InflightTable {
public:
    /*
     * Registers clusters [first, first + count), which no fetch may cover
     * yet.  The reference stays valid until the fetch is removed.
     */
    Fetch &add(std::uint64_t first, std::uint64_t count);
    Fetch *find(IcFetchId id);
    const Fetch *find(IcFetchId id) const;
    /* Forgets fetch @id; false if unknown. */
    bool remove(IcFetchId id);
    std::size_t size() const { return by_first_.size(); }

    /* What the planner needs to know about the fetches near a cluster. */
    struct Neighbourhood {
        const Fetch *covering;    /* the fetch containing the cluster */
        std::uint64_t next_first; /* first cluster of the first fetch that
                                     starts after the cluster, or
                                     UINT64_MAX if none */
    };
    Neighbourhood around(std::uint64_t cluster) const;

private:
    std::map<std::uint64_t, Fetch> by_first_;
    std::unordered_map<IcFetchId, std::uint64_t> first_by_id_;
    IcFetchId next_id_ = 1;
};

} // namespace intellicache

#endif
