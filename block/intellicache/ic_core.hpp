/*
 * intellicache core: the state of one cache, behind the C API.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_CORE_HPP
#define IC_CORE_HPP

#include "intellicache-core.h"

#include "ic_bitmap.hpp"
#include "ic_budget.hpp"
#include "ic_buffer_pool.hpp"
#include "ic_cache_state.hpp"
#include "ic_deferred.hpp"
#include "ic_durability.hpp"
#include "ic_fetch_slots.hpp"
#include "ic_geometry.hpp"
#include "ic_inflight.hpp"
#include "ic_reuse_meter.hpp"
#include "ic_scan_filter.hpp"
#include "ic_sequential.hpp"
#include "ic_store_queue.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

namespace intellicache {

class MessageBuffer;

/*
 * Composes the units (cluster bitmap, fetches in flight, durability, cache
 * state, fetch slots, store queue, buffer pool, sequential detector) and
 * keeps the statistics.  Each method is one C API function; see
 * intellicache-core.h for the contracts.
 *
 * The life of a fetch, and the calls that move it on (anything else is a
 * protocol error and aborts, see ic_check.hpp):
 *
 *   plan / plan_read_ahead /
 *   plan_zeros                  -> pending
 *   pending  fetch_done(ok)     -> done       fetch_done(!ok) -> forgotten
 *   done     store_admit        -> queued, or forgotten (not CACHING, or
 *                                  the backlog is full: skipped)
 *   done     fetch_stored       -> forgotten (stored without the queue)
 *   done     fetch_dropped      -> forgotten (skipped)
 *   queued   store_next         -> writing, or forgotten while not CACHING
 *                                  (skipped; the job says write=false)
 *   writing  fetch_stored       -> forgotten (present if ok)
 *   writing  fetch_dropped      -> forgotten (skipped)
 *
 * A fetch is in the store backlog from store_admit until it is forgotten.
 * In a bounded cache it also holds room in the budget from store_admit
 * until it is forgotten or stored (then its clusters are resident).
 * Not thread-safe: the glue serialises all calls.
 */
class Core {
public:
    /*
     * nullptr (and a message) if @g is not exactly a layout
     * ic_geometry_init() computes, @max_inflight is out of range, or the
     * state cannot be allocated.
     */
    static std::unique_ptr<Core> create(const IcGeometry &g,
                                        std::uint64_t instance,
                                        std::uint64_t max_fetch_bytes,
                                        std::uint32_t max_inflight,
                                        MessageBuffer &why);

    const IcGeometry &geometry() const { return geometry_.raw(); }

    IcMetaStatus load_meta_block(std::uint64_t index, const std::uint8_t *buf);
    void encode_meta_block(std::uint64_t index, std::uint8_t *out) const;
    std::uint64_t meta_block_offset(std::uint64_t index) const;
    std::uint64_t cache_offset(std::uint64_t offset) const;

    std::size_t plan(std::uint64_t offset, std::uint64_t bytes,
                     std::span<IcSegment> segs);
    void set_read_ahead(std::uint64_t window) {
        sequential_.set_window(window);
    }
    std::optional<ReadAhead> note_read(std::uint64_t offset,
                                       std::uint64_t bytes);
    std::size_t plan_read_ahead(std::uint64_t offset, std::uint64_t bytes,
                                IcSegment &seg);
    /* ic_core_plan_prefetch(). */
    std::size_t plan_prefetch(std::uint64_t offset, std::uint64_t bytes,
                              IcSegment &seg);
    /* ic_core_plan_refill(). */
    std::size_t plan_refill(std::uint64_t offset, std::uint64_t bytes,
                            IcSegment &seg);
    std::size_t plan_zeros(std::uint64_t offset, std::uint64_t bytes,
                           IcSegment &seg);
    void fetch_set_opaque(IcFetchId id, void *opaque);
    void fetch_done(IcFetchId id, bool ok);
    void fetch_stored(IcFetchId id, bool ok);
    void fetch_dropped(IcFetchId id);

    bool sync_begin();
    std::size_t sync_runs(std::span<IcMetaRun> out) const;
    void sync_end(bool ok) { durability_.sync_end(ok); }
    bool sync_needed() const { return durability_.sync_needed(); }

    IcCacheState cache_state() const { return state_.state(); }
    bool cache_failed(bool write) { return state_.failed(write); }
    void set_active(bool active);

    void apply_settings(const IcSettings &set);

    /* ic_core_set_bound(), the eviction batch. */
    bool set_bound(const IcSettings &set, PoolBudget *pool, void *opaque,
                   MessageBuffer &why);
    bool evict_needed() const;
    std::size_t evict_begin();
    std::size_t evict_ranges(std::size_t from, std::span<IcRange> out) const;
    bool evict_durable() const { return durability_.cleared_unsettled() == 0; }
    void evict_end();
    std::size_t unrecorded(std::uint64_t offset, std::uint64_t bytes,
                           std::span<IcRange> out) const;

    bool slot_take(IcFetchKind kind) { return slots_.take(kind); }
    bool slot_put() { return slots_.put(); }
    void note_bypass(std::uint64_t bytes) { stats_.miss_bytes += bytes; }
    void note_hit_failed(std::uint64_t bytes);
    void note_guest_miss(std::uint64_t now_ms) {
        slots_.note_guest_miss(now_ms);
    }
    bool prefetch_slot_take(std::uint64_t now_ms, std::uint64_t &max_bytes);

    bool store_admit(IcFetchId id);
    void note_thread_busy(std::uint32_t permille) { busy_.note(permille); }
    /* ic_core_defer_take(). */
    std::optional<IcRange> defer_take(std::uint64_t now_ms);
    bool defer_pending() const { return deferred_.size() != 0; }
    bool store_writer_start() { return store_.writer_start(); }
    bool store_next(IcStoreJob &job);

    void *buf_take(std::uint64_t bytes) { return pool_.take(bytes); }
    bool buf_give(void *buf, std::uint64_t bytes) {
        return pool_.give(buf, bytes);
    }
    void *buf_reclaim() { return pool_.reclaim(idle()); }
    /*
     * No fetch in flight and nothing queued to store: fetches queued or
     * being written are still in the inflight table, so one test does.
     */
    bool idle() const { return inflight_.size() == 0; }

    IcStats stats() const;
    bool cluster_present(std::uint64_t index) const {
        return present_.test(index);
    }

    /* See ic_core_present_run(). */
    struct PresentRun {
        bool present;
        std::uint64_t bytes;
    };
    PresentRun present_run(std::uint64_t offset, std::uint64_t bytes) const;

    std::uint64_t max_fetch_clusters() const { return max_fetch_clusters_; }

private:
    Core(const Geometry &geometry, std::uint64_t instance,
         std::uint64_t max_fetch_clusters, std::uint32_t max_inflight);

    /*
     * The first segment of a fetch nobody asked for yet (read-ahead,
     * prefetch), its bytes counted in @counter; 0 unless caching.
     */
    std::size_t plan_unasked(std::uint64_t offset, std::uint64_t bytes,
                             IcSegment &seg, std::uint64_t &counter,
                             bool prefetch);
    /* The first segment of a range, not a user read; 0 unless caching. */
    std::size_t plan_one(std::uint64_t offset, std::uint64_t bytes,
                         IcSegment &seg);

    /* The fetch @id, which must be known; @call names the API function. */
    Fetch &known_fetch(IcFetchId id, const char *call);
    /* Bytes of the base fetch @f covers. */
    std::uint64_t fetch_bytes(const Fetch &f) const;
    /* Bytes @f holds in the store backlog: none for a zero fill. */
    std::uint64_t backlog_bytes(const Fetch &f) const {
        return f.zeros ? 0 : fetch_bytes(f);
    }
    /* Forgets @f as deliberately not stored. */
    void skip(const Fetch &f);
    /* Whether a bounded cache stores @f: counts it if not. */
    bool budget_admits(Fetch &f);
    /*
     * Whether an unbounded cache stores @f now.  A guest's miss is
     * deferred instead while few clusters are read again and the node's
     * thread is busy (see DeferredStores); read-ahead and prefetches are
     * always stored.
     */
    bool stores_now(const Fetch &f);
    /* Notes guest reads of the clusters of @segs for the reuse meter. */
    void note_reuse(std::span<const IcSegment> segs);
    /* Gives back the room @f holds in the budget, if any. */
    void unreserve(Fetch &f);
    /*
     * Notes HIT segment @seg: where its bytes came from, and its reuse of
     * clusters with the policy of a bounded cache.
     */
    void note_hit(const IcSegment &seg);
    /* Notes WAIT segment @seg: a reader goes through data loaded ahead. */
    void note_wait(const IcSegment &seg);
    Geometry geometry_;
    std::uint64_t instance_;
    std::uint64_t max_fetch_clusters_;
    ClusterBitmap present_;
    /*
     * Clusters stored by read-ahead or prefetch that no read has gone
     * through to the end of yet: hits in them are the reader's first pass
     * over data loaded ahead of it (counted in hit_ahead_bytes), not
     * reuse (not passed to the policy).  Without the second, every
     * cluster a sequential reader reads behind its read-ahead would look
     * read twice.  One bit per cluster of the base, resident only where
     * data was loaded ahead (ClusterBitmap).
     */
    ClusterBitmap ahead_;
    InflightTable inflight_;
    DurabilityTracker durability_;
    SequentialDetector sequential_;
    CacheState state_;
    FetchSlots slots_;
    StoreQueue store_;
    BufferPool pool_;
    /* A bounded cache's room and eviction; null while unbounded. */
    std::unique_ptr<CacheBudget> budget_;
    PoolBudget *host_pool_ = nullptr; /* the pool the budget is in, if any */
    ScanFilter scan_;
    /* An unbounded cache's reuse and the stores it deferred. */
    ReuseMeter reuse_;
    DeferredStores deferred_;
    BusyGate busy_;
    std::uint64_t last_touched_ = UINT64_MAX; /* see note_hit() */
    IcStats stats_{}; /* only the event counters; the rest is derived */
};

} // namespace intellicache

#endif
