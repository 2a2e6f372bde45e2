/*
 * intellicache core: the state of one cache, behind the C API.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_core.hpp"

#include "ic_check.hpp"
#include "ic_message.hpp"
#include "ic_meta_codec.hpp"
#include "ic_planner.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <new>

namespace intellicache {

namespace {

/* The limits as 64-bit values: the macros are unsigned int expressions. */
constexpr auto kMaxFetchLimit = static_cast<std::uint64_t>(IC_MAX_FETCH_LIMIT);
constexpr auto kMaxReadAhead = static_cast<std::uint64_t>(IC_MAX_READ_AHEAD);

/* Whole clusters, at least one, and never beyond the format's limit. */
std::uint64_t fetch_clusters(std::uint64_t bytes, std::uint32_t cluster_size) {
    bytes = std::min(bytes, kMaxFetchLimit);
    return std::max<std::uint64_t>(1, bytes / cluster_size);
}

/* Bytes of a presence bitmap of @clusters bits, for messages. */
void describe_bitmap(std::uint64_t clusters, char *out, std::size_t len) {
    const std::uint64_t bytes = (clusters + 63) / 64 * 8;
    constexpr std::uint64_t kKiB = 1024;
    constexpr std::uint64_t kMiB = kKiB * 1024;
    if (bytes >= kMiB) {
        std::snprintf(out, len, "%" PRIu64 " MiB", (bytes + kMiB - 1) / kMiB);
    } else {
        std::snprintf(out, len, "%" PRIu64 " KiB", (bytes + kKiB - 1) / kKiB);
    }
}

} // namespace

std::unique_ptr<Core> Core::create(const IcGeometry &g, std::uint64_t instance,
                                   std::uint64_t max_fetch_bytes,
                                   std::uint32_t max_inflight,
                                   MessageBuffer &why) {
    const auto adopted = Geometry::adopt(g);
    if (!adopted) {
        why.set("invalid cache geometry: not a layout that "
                "ic_geometry_init() computes");
        return nullptr;
    }
    if (max_inflight < 1 || max_inflight > IC_MAX_INFLIGHT_LIMIT) {
        why.set("max-inflight must be from 1 to %u, not %" PRIu32,
                IC_MAX_INFLIGHT_LIMIT, max_inflight);
        return nullptr;
    }
    /*
     * The presence bitmap is sized by the user's base and cluster size (up
     * to 512 MiB): failing to allocate it is the user's problem to solve,
     * not a reason to take the whole process down.
     */
    try {
        return std::unique_ptr<Core>(
            new Core(*adopted, instance,
                     fetch_clusters(max_fetch_bytes, adopted->cluster_size()),
                     max_inflight));
    } catch (const std::bad_alloc &) {
        char size[32];
        describe_bitmap(adopted->cluster_count(), size, sizeof(size));
        why.set("cannot allocate the state of %" PRIu64
                " clusters (%s): choose a larger cluster-size",
                adopted->cluster_count(), size);
        return nullptr;
    }
}

Core::Core(const Geometry &geometry, std::uint64_t instance,
           std::uint64_t max_fetch_clusters, std::uint32_t max_inflight)
    : geometry_(geometry), instance_(instance),
      max_fetch_clusters_(max_fetch_clusters),
      present_(geometry.cluster_count()), ahead_(geometry.cluster_count()),
      sequential_(0, geometry.base_size()), slots_(max_inflight),
      pool_(max_fetch_clusters * geometry.cluster_size()) {}

IcMetaStatus Core::load_meta_block(std::uint64_t index,
                                   const std::uint8_t *buf) {
    if (buf == nullptr || index >= geometry_.meta_blocks()) {
        return IC_META_DAMAGED;
    }
    MetaBlockCodec::Words words{};
    const IcMetaStatus status =
        MetaBlockCodec::decode(index, instance_, buf, words);
    if (status != IC_META_OK) {
        return status;
    }
    /* merge_word() drops bits beyond cluster_count. */
    const std::size_t first_word = index * MetaBlockCodec::kWords;
    for (std::size_t w = 0; w < words.size(); w++) {
        present_.merge_word(first_word + w, words[w]);
    }
    return IC_META_OK;
}

void Core::encode_meta_block(std::uint64_t index, std::uint8_t *out) const {
    if (index >= geometry_.meta_blocks()) {
        /* Not a block of this cache: an empty block is the harmless answer. */
        std::memset(out, 0, IC_META_BLOCK_SIZE);
        return;
    }
    MetaBlockCodec::Words words{};
    const std::size_t first_word = index * MetaBlockCodec::kWords;
    for (std::size_t w = 0; w < words.size(); w++) {
        words[w] = present_.word(first_word + w);
    }
    durability_.exclude_pending(index * kMetaBlockClusters, words);
    MetaBlockCodec::encode(index, instance_, words, out);
}

std::uint64_t Core::meta_block_offset(std::uint64_t index) const {
    return geometry_.raw().meta_offset + index * IC_META_BLOCK_SIZE;
}

std::uint64_t Core::cache_offset(std::uint64_t offset) const {
    IC_CHECK(offset <= geometry_.base_size(),
             "ic_core_cache_offset() of byte %" PRIu64
             ", beyond the base of %" PRIu64 " bytes",
             offset, geometry_.base_size());
    return geometry_.cache_offset(offset);
}

std::size_t Core::plan(std::uint64_t offset, std::uint64_t bytes,
                       std::span<IcSegment> segs) {
    PlanCounters counters;
    const std::size_t n =
        Planner(geometry_, present_, inflight_, max_fetch_clusters_)
            .plan(offset, bytes, segs, counters);
    stats_.hit_bytes += counters.hit_bytes;
    stats_.miss_bytes += counters.miss_bytes;
    stats_.wait_bytes += counters.wait_bytes;
    stats_.fetches += counters.fetches;
    if (!budget_ && state_.caching() && n > 0) {
        note_reuse(segs.first(n));
    }
    for (const IcSegment &seg : segs.first(n)) {
        if (seg.kind == IC_SEG_HIT) {
            note_hit(seg);
        } else if (seg.kind == IC_SEG_WAIT) {
            note_wait(seg);
        } else if (budget_ && seg.kind == IC_SEG_FETCH) {
            known_fetch(seg.fetch, "ic_core_plan").scan =
                scan_.in_scan(seg.fetch_offset);
        }
    }
    return n;
}

/*
 * The base served a hit whose cache file read failed: the reader got the
 * base's data, so the bytes are a miss.  The part of them loaded ahead was
 * not served from the cache either (it stays within the hits).
 */
void Core::note_hit_failed(std::uint64_t bytes) {
    stats_.hit_bytes -= std::min(bytes, stats_.hit_bytes);
    stats_.hit_ahead_bytes = std::min(stats_.hit_ahead_bytes, stats_.hit_bytes);
    stats_.miss_bytes += bytes;
}

/*
 * Data loaded ahead is counted as such until a read reaches the end of its
 * cluster: a sequential reader reads a cluster in several requests, and
 * each of them reads data the read-ahead brought.
 *
 * A hit that continues in the cluster the previous hit ended in is the
 * same use of it: small sequential reads within a large cluster would
 * otherwise count as reuse, and a scan in 4 KiB reads over 64 KiB
 * clusters would look hot to the policy (ic-cachesim --no-repeat-touch
 * measures it: the boot set of the scan workload kept 0% instead of
 * 100%).
 */
void Core::note_hit(const IcSegment &seg) {
    const std::uint64_t end = seg.offset + seg.bytes;
    const std::uint64_t first = geometry_.cluster_of(seg.offset);
    const std::uint64_t last = geometry_.cluster_of(end - 1);
    /* A warm unbounded cache has nothing to note: no walk over clusters. */
    if (ahead_.count() == 0 && !budget_) {
        last_touched_ = last;
        return;
    }
    for (std::uint64_t c = first; c <= last; c++) {
        if (ahead_.test(c)) {
            const std::uint64_t c_end = geometry_.clusters_end(c + 1);
            stats_.hit_ahead_bytes +=
                std::min(end, c_end) -
                std::max(seg.offset, geometry_.cluster_start(c));
            if (end >= c_end) {
                ahead_.clear(c);
            }
        } else if (budget_ && c != last_touched_) {
            budget_->touch(c, 1);
        }
    }
    last_touched_ = last;
}

/*
 * A reader that joins a fetch of read-ahead or a prefetch reads that data
 * before it is stored: the clusters it goes through to their end are not
 * loaded ahead of it any more, and their later hits are the cache's own.
 */
void Core::note_wait(const IcSegment &seg) {
    Fetch &f = known_fetch(seg.fetch, "ic_core_plan");
    if (!f.unasked) {
        f.joined = true;
        return;
    }
    const std::uint64_t end = seg.offset + seg.bytes;
    std::uint64_t through = geometry_.cluster_of(end);
    if (end == geometry_.base_size()) {
        through = geometry_.cluster_count();
    }
    f.read_through = std::max(f.read_through, through);
}

/*
 * Read-ahead only while CACHING: data that cannot be stored would be
 * fetched and thrown away, taking base bandwidth from the readers.  The
 * streams are not even followed meanwhile, so they start afresh after.
 */
std::optional<ReadAhead> Core::note_read(std::uint64_t offset,
                                         std::uint64_t bytes) {
    if (!state_.caching()) {
        return std::nullopt;
    }
    /*
     * A scan in a bounded cache is passed through at the reader's own
     * pace: what is read ahead for it would not be stored.
     */
    if (budget_ && scan_.note_read(offset, bytes)) {
        return std::nullopt;
    }
    return sequential_.note_read(offset, bytes);
}

std::size_t Core::plan_read_ahead(std::uint64_t offset, std::uint64_t bytes,
                                  IcSegment &seg) {
    return plan_unasked(offset, bytes, seg, stats_.readahead_bytes, false);
}

bool Core::prefetch_slot_take(std::uint64_t now_ms, std::uint64_t &max_bytes) {
    const std::uint64_t full = max_fetch_clusters_ * geometry_.cluster_size();
    max_bytes =
        slots_.guests_active(now_ms)
            ? std::min<std::uint64_t>(
                  full, std::max<std::uint64_t>(IC_GUEST_PREFETCH_BYTES,
                                                geometry_.cluster_size()))
            : full;
    return slots_.take_prefetch(now_ms);
}

std::size_t Core::plan_prefetch(std::uint64_t offset, std::uint64_t bytes,
                                IcSegment &seg) {
    return plan_unasked(offset, bytes, seg, stats_.prefetch_bytes, true);
}

/*
 * A guest read these clusters already: stored, they are not data loaded
 * ahead of a reader (read_through covers the whole fetch), so hits on
 * them are not counted in hit_ahead_bytes, and the ahead bitmap, large
 * over a large base, is not touched for them.
 */
std::size_t Core::plan_refill(std::uint64_t offset, std::uint64_t bytes,
                              IcSegment &seg) {
    const std::size_t n = plan_prefetch(offset, bytes, seg);
    if (n == 1 && seg.kind == IC_SEG_FETCH) {
        Fetch &f = known_fetch(seg.fetch, "ic_core_plan_refill");
        f.read_through = f.first + f.count;
    }
    return n;
}

std::size_t Core::plan_unasked(std::uint64_t offset, std::uint64_t bytes,
                               IcSegment &seg, std::uint64_t &counter,
                               bool prefetch) {
    const std::size_t n = plan_one(offset, bytes, seg);
    if (n == 1 && seg.kind == IC_SEG_FETCH) {
        Fetch &f = known_fetch(seg.fetch, "ic_core_plan_read_ahead");
        f.unasked = true;
        f.prefetch = prefetch;
        stats_.fetches++;
        counter += seg.fetch_bytes;
    }
    return n;
}

/*
 * Zeros the base reported are recorded like fetched data, so that the
 * clusters count as present (and durable) through the same pipeline, but
 * nothing is read: the writer writes zeros.  Not counted as fetches.
 */
std::size_t Core::plan_zeros(std::uint64_t offset, std::uint64_t bytes,
                             IcSegment &seg) {
    const std::size_t n = plan_one(offset, bytes, seg);
    if (n == 1 && seg.kind == IC_SEG_FETCH) {
        known_fetch(seg.fetch, "ic_core_plan_zeros").zeros = true;
    }
    return n;
}

/*
 * The first segment of [offset, offset + bytes), not counted as a user
 * read; nothing unless CACHING: data that cannot be stored is not worth
 * fetching, or recording, for nobody.
 */
std::size_t Core::plan_one(std::uint64_t offset, std::uint64_t bytes,
                           IcSegment &seg) {
    if (!state_.caching()) {
        return 0;
    }
    PlanCounters counters;
    return Planner(geometry_, present_, inflight_, max_fetch_clusters_)
        .plan(offset, bytes, std::span(&seg, 1), counters);
}

Fetch &Core::known_fetch(IcFetchId id, const char *call) {
    Fetch *f = inflight_.find(id);
    IC_CHECK(f != nullptr, "%s() of unknown fetch %" PRIu64, call, id);
    return *f;
}

std::uint64_t Core::fetch_bytes(const Fetch &f) const {
    return geometry_.clusters_end(f.first + f.count) -
           geometry_.cluster_start(f.first);
}

void Core::skip(const Fetch &f) {
    /* Its clusters were never marked present: forgetting the fetch makes
     * them absent, so the next plan fetches them again. */
    stats_.store_skipped++;
    inflight_.remove(f.id);
}

void Core::fetch_set_opaque(IcFetchId id, void *opaque) {
    known_fetch(id, "ic_core_fetch_set_opaque").opaque = opaque;
}

void Core::fetch_done(IcFetchId id, bool ok) {
    Fetch &f = known_fetch(id, "ic_core_fetch_done");
    IC_CHECK(f.state == FetchState::pending,
             "ic_core_fetch_done() of fetch %" PRIu64
             ", which is %s, not pending",
             id, fetch_state_name(f.state));
    if (ok) {
        f.state = FetchState::done;
        if (!f.zeros) {
            stats_.fetched_bytes += fetch_bytes(f);
        }
    } else {
        stats_.fetch_errors++;
        inflight_.remove(id);
    }
}

void Core::fetch_stored(IcFetchId id, bool ok) {
    Fetch &f = known_fetch(id, "ic_core_fetch_stored");
    IC_CHECK(f.state == FetchState::done || f.state == FetchState::writing,
             "ic_core_fetch_stored() of fetch %" PRIu64
             ", which is %s, not done or handed to a writer",
             id, fetch_state_name(f.state));
    const std::uint64_t bytes = fetch_bytes(f);
    if (f.state == FetchState::writing) {
        store_.release(backlog_bytes(f));
    }
    if (ok) {
        (f.zeros ? stats_.zeroed_bytes : stats_.stored_bytes) += bytes;
        present_.set_range(f.first, f.count);
        durability_.note_stored(f.first, f.count);
        const std::uint64_t ahead_from = std::max(f.first, f.read_through);
        if (f.unasked && !f.zeros && ahead_from < f.first + f.count) {
            ahead_.set_range(ahead_from, f.first + f.count - ahead_from);
        }
        /* Zeros take no room: they are not the policy's to evict. */
        if (budget_ && !f.zeros) {
            budget_->stored(f.first, f.count, f.reserved);
            f.reserved = false;
        }
    } else {
        stats_.store_errors++;
    }
    unreserve(f);
    inflight_.remove(id);
}

void Core::fetch_dropped(IcFetchId id) {
    Fetch &f = known_fetch(id, "ic_core_fetch_dropped");
    IC_CHECK(f.state == FetchState::done || f.state == FetchState::writing,
             "ic_core_fetch_dropped() of fetch %" PRIu64
             ", which is %s, not done or handed to a writer",
             id, fetch_state_name(f.state));
    if (f.state == FetchState::writing) {
        store_.release(backlog_bytes(f));
    }
    unreserve(f);
    skip(f);
}

void Core::unreserve(Fetch &f) {
    if (f.reserved) {
        if (budget_) {
            budget_->unreserve(f.count);
        }
        f.reserved = false;
    }
}

void Core::note_reuse(std::span<const IcSegment> segs) {
    const std::uint64_t first = geometry_.cluster_of(segs.front().offset);
    const IcSegment &last = segs.back();
    const std::uint64_t end =
        geometry_.cluster_of(last.offset + last.bytes - 1) + 1;
    for (std::uint64_t c = first; c < end; c++) {
        reuse_.read(c);
    }
}

bool Core::stores_now(const Fetch &f) {
    if (f.unasked) {
        return true;
    }
    for (std::uint64_t c = f.first; c < f.first + f.count; c++) {
        reuse_.entered(c);
    }
    /*
     * Guests that read the same clusters at once (VMs booting from the
     * same image) join one fetch: their reads came before the clusters
     * entered, so they are counted now, and the fetch is stored whatever
     * the measure says, as the reuse is certain.
     */
    if (f.joined) {
        for (std::uint64_t c = f.first; c < f.first + f.count; c++) {
            reuse_.read(c);
        }
        return true;
    }
    if (!reuse_.low() || !busy_.busy() || !deferred_.room(f.count)) {
        return true;
    }
    try {
        deferred_.push(f.first, f.count);
    } catch (const std::bad_alloc &) {
        return true; /* no queue: store it now, as before */
    }
    stats_.deferred_total_bytes += fetch_bytes(f);
    return false;
}

std::optional<IcRange> Core::defer_take(std::uint64_t now_ms) {
    if (!state_.caching() || slots_.guests_active(now_ms)) {
        return std::nullopt;
    }
    const auto run = deferred_.take(max_fetch_clusters_);
    if (!run) {
        return std::nullopt;
    }
    const std::uint64_t start = geometry_.cluster_start(run->first);
    return IcRange{start,
                   geometry_.clusters_end(run->first + run->count) - start};
}

/*
 * A bounded cache stores a fetch only if it is not a scan, none of its
 * clusters is being freed (their holes are punched after their records
 * are durable: data written before the punch would be lost under a
 * present bit) and there is room for it.  Zero fills take no room.
 */
bool Core::budget_admits(Fetch &f) {
    if (f.zeros) {
        return true;
    }
    if (!budget_) {
        return stores_now(f);
    }
    const std::uint64_t bytes = fetch_bytes(f);
    if (f.scan) {
        stats_.scan_bytes += bytes;
        return false;
    }
    if (!f.prefetch && !budget_->admit(f.first, f.count)) {
        stats_.unadmitted_bytes += bytes;
        return false;
    }
    if (budget_->freeing(f.first, f.count) || !budget_->reserve(f.count)) {
        stats_.no_room_bytes += bytes;
        return false;
    }
    f.reserved = true;
    return true;
}

bool Core::store_admit(IcFetchId id) {
    Fetch &f = known_fetch(id, "ic_core_store_admit");
    IC_CHECK(f.state == FetchState::done,
             "ic_core_store_admit() of fetch %" PRIu64
             ", which is %s, not done",
             id, fetch_state_name(f.state));
    const std::uint64_t bytes = backlog_bytes(f);
    if (!state_.caching() || !store_.fits(bytes) || !budget_admits(f)) {
        skip(f);
        return false;
    }
    f.state = FetchState::queued;
    store_.push(id, bytes);
    return true;
}

bool Core::store_next(IcStoreJob &job) {
    IC_CHECK(store_.writers() > 0,
             "ic_core_store_next() without a writer started by "
             "ic_core_store_writer_start()");
    const std::optional<IcFetchId> id = store_.pop();
    if (!id) {
        store_.writer_stop();
        return false;
    }
    Fetch &f = known_fetch(*id, "ic_core_store_next");
    IC_CHECK(f.state == FetchState::queued,
             "fetch %" PRIu64 " in the store "
             "queue is %s",
             *id, fetch_state_name(f.state));
    job = IcStoreJob{};
    job.fetch = f.id;
    job.opaque = f.opaque;
    job.cache_offset = cache_offset(geometry_.cluster_start(f.first));
    job.bytes = fetch_bytes(f);
    job.zeros = f.zeros;
    /* The state may have left CACHING since the fetch was admitted. */
    job.write = state_.caching();
    if (job.write) {
        f.state = FetchState::writing;
    } else {
        store_.release(backlog_bytes(f));
        unreserve(f);
        skip(f);
    }
    return true;
}

bool Core::sync_begin() {
    /* An inactive node writes nothing into the cache file, not even
     * metadata: the clusters stay pending until it is active again. */
    if (!state_.active()) {
        return false;
    }
    return durability_.sync_begin();
}

std::size_t Core::sync_runs(std::span<IcMetaRun> out) const {
    const auto runs = durability_.sync_runs();
    const std::size_t n = std::min(out.size(), runs.size());
    for (std::size_t i = 0; i < n; i++) {
        out[i] = IcMetaRun{runs[i].first, runs[i].count,
                           meta_block_offset(runs[i].first)};
    }
    return runs.size();
}

void Core::set_active(bool active) {
    if (!active) {
        IC_CHECK(store_.jobs() == 0,
                 "deactivating with %" PRIu64 " store(s) queued or being "
                 "written: drain first",
                 store_.jobs());
        IC_CHECK(!durability_.sync_running(),
                 "deactivating while a metadata sync runs: finish it first");
    }
    state_.set_active(active);
}

void Core::apply_settings(const IcSettings &set) {
    const std::uint32_t cs = geometry_.cluster_size();
    IC_CHECK(set.cluster_size == cs,
             "ic_core_apply_settings() for cluster size %" PRIu32
             " on a cache of cluster size %" PRIu32,
             set.cluster_size, cs);
    IC_CHECK(set.max_inflight >= 1 && set.max_inflight <= IC_MAX_INFLIGHT_LIMIT,
             "ic_core_apply_settings() with max-inflight %" PRIu32,
             set.max_inflight);
    IC_CHECK(set.max_fetch > 0 && set.max_fetch <= kMaxFetchLimit &&
                 set.max_fetch % cs == 0,
             "ic_core_apply_settings() with max-fetch %" PRIu64
             " (cluster size %" PRIu32 ")",
             set.max_fetch, cs);
    IC_CHECK(set.read_ahead <= kMaxReadAhead,
             "ic_core_apply_settings() with read-ahead %" PRIu64,
             set.read_ahead);
    max_fetch_clusters_ = set.max_fetch / cs;
    slots_.set_limit(set.max_inflight);
    sequential_.set_window(set.read_ahead);
    pool_.set_size(set.max_fetch);
}

Core::PresentRun Core::present_run(std::uint64_t offset,
                                   std::uint64_t bytes) const {
    const std::uint64_t base_size = geometry_.base_size();
    if (offset >= base_size || bytes == 0) {
        return {.present = false, .bytes = 0};
    }
    const std::uint64_t end = offset + std::min(bytes, base_size - offset);
    const std::uint64_t first = geometry_.cluster_of(offset);
    const std::uint64_t limit = geometry_.cluster_of(end - 1) - first + 1;
    const bool present = present_.test(first);
    const std::uint64_t run = present_.run_length(first, present, limit);
    return {.present = present,
            .bytes =
                std::min(geometry_.clusters_end(first + run), end) - offset};
}

IcStats Core::stats() const {
    IcStats st = stats_;
    st.cached_clusters = present_.count();
    const std::uint64_t unsettled = durability_.unsettled_clusters();
    st.durable_clusters =
        st.cached_clusters > unsettled ? st.cached_clusters - unsettled : 0;
    st.inflight_fetches = inflight_.size();
    st.store_backlog = store_.backlog();
    st.deferred_bytes = deferred_.size() * geometry_.cluster_size();
    if (budget_) {
        st.capacity_clusters = budget_->capacity();
        st.used_clusters = budget_->used();
        st.reuse_low = budget_->reuse_low();
    } else {
        st.reuse_low = reuse_.low();
    }
    return st;
}

bool Core::set_bound(const IcSettings &set, PoolBudget *pool, void *opaque,
                     MessageBuffer &why) {
    const std::uint32_t cs = geometry_.cluster_size();
    IC_CHECK(set.cluster_size == cs,
             "ic_core_set_bound() for cluster size %" PRIu32
             " on a cache of cluster size %" PRIu32,
             set.cluster_size, cs);
    IC_CHECK(!budget_ || !budget_->evicting(),
             "ic_core_set_bound() while a batch is being freed");
    /* A pool member without a bound of its own is bounded by the pool. */
    const std::uint64_t capacity = set.cache_size != 0 ? set.cache_size / cs
                                   : pool != nullptr ? geometry_.cluster_count()
                                                     : 0;
    IC_CHECK(set.cache_size == 0 || capacity >= 1,
             "ic_core_set_bound() with cache-size %" PRIu64
             ", below one cluster",
             set.cache_size);
    if (capacity == 0) {
        budget_.reset(); /* leaves its pool */
        host_pool_ = nullptr;
        scan_.set_threshold(0);
        return true;
    }
    /*
     * A bounded cache does not defer: refusing a miss is its admission's
     * job, and storing deferred misses later could evict what guests use.
     */
    deferred_.clear();
    if (budget_) {
        try {
            budget_->set_capacity(capacity);
        } catch (const std::bad_alloc &) {
            why.set("cannot allocate the eviction state of %" PRIu64
                    " clusters",
                    capacity);
            return false;
        }
        /* Moves what it holds from the old pool to the new one. */
        budget_->set_pool(pool, opaque, cs);
    } else {
        std::unique_ptr<CacheBudget> budget =
            CacheBudget::create(geometry_.cluster_count(), capacity, why);
        if (!budget) {
            return false;
        }
        /*
         * What is present now enters as loaded: zero fills among them are
         * counted too (after a restart they cannot be told apart), which
         * errs on the side of the bound.
         */
        for (std::uint64_t c = present_.run_length(0, false, UINT64_MAX);
             c < geometry_.cluster_count();) {
            const std::uint64_t run = present_.run_length(c, true, UINT64_MAX);
            for (std::uint64_t i = c; i < c + run; i++) {
                budget->load(i);
            }
            c += run;
            c += present_.run_length(c, false, UINT64_MAX);
        }
        budget->set_pool(pool, opaque, cs);
        budget_ = std::move(budget);
    }
    host_pool_ = pool;
    /* A cache as large as the base, alone, never evicts: scans may stay. */
    scan_.set_threshold(capacity >= geometry_.cluster_count() &&
                                host_pool_ == nullptr
                            ? 0
                            : set.scan_threshold);
    return true;
}

bool Core::evict_needed() const {
    return budget_ && state_.caching() && budget_->evict_needed();
}

std::size_t Core::evict_begin() {
    IC_CHECK(evict_needed(), "ic_core_evict_begin() when no batch is needed");
    const auto runs = budget_->evict_begin();
    for (const CacheBudget::Run &r : runs) {
        present_.clear_range(r.first, r.count);
        ahead_.clear_range(r.first, r.count);
        durability_.note_cleared(r.first, r.count);
        stats_.evicted_clusters += r.count;
    }
    return runs.size();
}

std::size_t Core::evict_ranges(std::size_t from, std::span<IcRange> out) const {
    IC_CHECK(budget_ && budget_->evicting(),
             "ic_core_evict_ranges() with no batch being freed");
    const auto runs = budget_->victims();
    std::size_t n = 0;
    for (std::size_t i = from; i < runs.size() && n < out.size(); i++, n++) {
        const std::uint64_t start = geometry_.cluster_start(runs[i].first);
        out[n] = IcRange{cache_offset(start),
                         geometry_.clusters_end(runs[i].first + runs[i].count) -
                             start};
    }
    return n;
}

std::size_t Core::unrecorded(std::uint64_t offset, std::uint64_t bytes,
                             std::span<IcRange> out) const {
    IC_CHECK(inflight_.size() == 0,
             "ic_core_unrecorded() with fetches in flight, whose data may "
             "be being written");
    const IcGeometry &g = geometry_.raw();
    const std::uint64_t start = std::max(offset, g.data_offset);
    const std::uint64_t end = std::min(offset + bytes, g.file_size);
    std::size_t n = 0;
    if (start >= end) {
        return 0;
    }
    const std::uint64_t last = geometry_.slot_of(end - 1);
    for (std::uint64_t c = geometry_.slot_of(start);
         c <= last && n < out.size();) {
        c += present_.run_length(c, true, last - c + 1);
        if (c > last) {
            break;
        }
        const std::uint64_t run = present_.run_length(c, false, last - c + 1);
        const std::uint64_t lo = std::max(start, geometry_.slot_start(c));
        const std::uint64_t hi = std::min(end, geometry_.slot_start(c + run));
        out[n++] = IcRange{lo, hi - lo};
        c += run;
    }
    return n;
}

void Core::evict_end() {
    IC_CHECK(budget_ && budget_->evicting(),
             "ic_core_evict_end() with no batch being freed");
    budget_->evict_end();
}

} // namespace intellicache
