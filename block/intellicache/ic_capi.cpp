/*
 * intellicache core: the extern "C" API (intellicache-core.h).
 *
 * Thin wrappers.  Exceptions must never unwind into the C glue; the only
 * ones the core can raise are allocation failures.  ic_core_new() turns
 * them into NULL and a message (the presence bitmap is sized by the user);
 * every other entry point runs its body through no_throw(), which turns
 * them into std::terminate(), as g_malloc() would abort in the glue.
 *
 * Behaviour the header leaves open, decided here:
 *  - @why buffers are set to "" on success, so they always hold a string.
 *  - ic_header_encode(): version 0 means IC_FORMAT_VERSION.
 *  - ic_header_check(): @expected NULL skips the cluster size, base size
 *    and fingerprint comparisons; @found is zeroed, then filled as soon as
 *    the checksum is good (so it is valid for VERSION, CORRUPT layouts and
 *    every mismatch status).
 *  - ic_options_check(): max-fetch given as 0 is refused, not taken as the
 *    default (read-ahead 0 means none, so a silent default would surprise).
 *    max_fetch and read_ahead not given stay 0 until ic_settings_resolve(),
 *    which runs the same checks again and may be called again for another
 *    cluster size (it recomputes @set from @opts).
 *  - ic_open_decide(): an unknown status is refused.
 *  - ic_fingerprint_plan(): a base of 0 bytes has no ranges.
 *  - ic_core_new(): max_fetch_bytes is also capped at IC_MAX_FETCH_LIMIT;
 *    max_inflight outside [1, IC_MAX_INFLIGHT_LIMIT] gives NULL and a
 *    message.  The buffer pool starts at the rounded max-fetch size.
 *  - ic_core_cache_offset(): defined up to the end of the base (base_size)
 *    so that range ends map too.
 *  - ic_core_plan(): a request reaching past the base is clamped to it.  It
 *    does not consult the cache state: while BYPASSED the glue reads the
 *    base itself, and HIT segments planned before the bypass are the
 *    glue's to serve from the base.
 *  - ic_core_note_read(), ic_core_plan_read_ahead(): nothing is read ahead
 *    unless CACHING (false and 0 respectively), and sequential streams are
 *    not followed meanwhile: data that cannot be stored is not worth
 *    fetching ahead.
 *  - ic_core_cache_failed(): a write failing on a BYPASSED cache changes
 *    nothing visible (false).  A failure while INACTIVE shows once the
 *    node is active again.
 *  - ic_core_slot_put(): wakes a waiter only if a slot is then free under
 *    the current limit (after max-inflight was lowered, not before enough
 *    slots came back).
 *  - ic_core_store_writer_start(): "fetches are queued" counts only the
 *    queued fetches that the running writers will not take next (each
 *    running writer not busy writing takes one), so admitting one fetch
 *    starts one writer even when the glue schedules writers rather than
 *    running them at once.
 *  - ic_core_fetch_stored() and ic_core_fetch_dropped() also accept a fetch
 *    that is done and was never admitted to the store queue.
 *  - ic_core_buf_give(): NULL is never kept.  Buffers of an old size count
 *    against IC_BUF_POOL_SIZE until reclaimed.
 *  - ic_core_sync_runs(): @runs NULL counts as @max 0.
 *  - Out-of-range metadata block indexes load as DAMAGED and encode as an
 *    all-zero block.
 *
 * Protocol errors abort with "intellicache: protocol error: ..." on stderr
 * (ic_check.hpp), in every build: any call with an unknown fetch id;
 * fetch_done() on a fetch that is not pending; fetch_stored() or
 * fetch_dropped() on a fetch that is not done or handed to a writer (still
 * pending, or queued: only a writer's job is written); store_admit() on a
 * fetch that is not done; store_next() without a running writer;
 * slot_put() without a slot taken; sync_end() without a running sync;
 * set_active(false) with stores queued or being written, or a sync
 * running; apply_settings() with another cluster size or values that
 * ic_settings_resolve() never gives; cache_offset() beyond the base;
 * buf_give() of a buffer already pooled; set_bound() while a batch is
 * being freed; evict_begin() when evict_needed() is false; evict_ranges()
 * or evict_end() with no batch being freed; unrecorded() with fetches in
 * flight; ic_core_free() while buffers are
 * pooled (the glue calls ic_core_buf_reclaim() until NULL first, and frees
 * what it returns: the core cannot free the glue's memory).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "ic_base_health.hpp"
#include "ic_check.hpp"
#include "ic_core.hpp"
#include "ic_fingerprint.hpp"
#include "ic_geometry.hpp"
#include "ic_latency.hpp"
#include "ic_message.hpp"
#include "ic_meta_codec.hpp"
#include "ic_open_decision.hpp"
#include "ic_options.hpp"
#include "ic_profile.hpp"

#include <array>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <span>
#include <utility>

/* The opaque handles of the C API. */
struct IcCore {
    std::unique_ptr<intellicache::Core> core;
};

struct IcProfileRecorder {
    intellicache::ProfileRecorder recorder;
};

struct IcPool {
    intellicache::PoolBudget pool;
};

struct IcHealth {
    intellicache::BaseHealth health;
    std::array<uint64_t, IC_HEALTH_COUNTERS> counters{};
};

namespace {

template <typename F> decltype(auto) no_throw(F &&body) noexcept {
    return std::forward<F>(body)();
}

} // namespace

bool ic_geometry_init(IcGeometry *g, uint64_t base_size, uint32_t cluster_size,
                      char *why, size_t why_len) {
    return no_throw([&] {
        intellicache::MessageBuffer msg(why, why_len);
        const auto geometry =
            intellicache::Geometry::compute(base_size, cluster_size, msg);
        if (!geometry) {
            return false;
        }
        if (g != nullptr) {
            *g = geometry->raw();
        }
        return true;
    });
}

uint32_t ic_default_cluster_size(uint64_t base_size) {
    return no_throw([&] {
        return intellicache::Geometry::default_cluster_size(base_size);
    });
}

void ic_header_encode(const IcHeaderInfo *h, uint8_t *out) {
    no_throw([&] { intellicache::HeaderCodec::encode(*h, out); });
}

IcHeaderStatus ic_header_check(const uint8_t *buf, size_t buf_len,
                               uint64_t file_size, const IcHeaderInfo *expected,
                               IcHeaderInfo *found, char *why, size_t why_len) {
    return no_throw([&] {
        intellicache::MessageBuffer msg(why, why_len);
        return intellicache::HeaderCodec::check(buf, buf_len, file_size,
                                                expected, found, msg);
    });
}

bool ic_options_check(const IcOptions *opts, IcSettings *out, char *why,
                      size_t why_len) {
    return no_throw([&] {
        intellicache::MessageBuffer msg(why, why_len);
        return intellicache::Options(*opts).check(*out, msg);
    });
}

bool ic_settings_resolve(const IcOptions *opts, IcSettings *set,
                         uint32_t cluster_size, char *why, size_t why_len) {
    return no_throw([&] {
        intellicache::MessageBuffer msg(why, why_len);
        return intellicache::Options(*opts).resolve(*set, cluster_size, msg);
    });
}

IcOpenAction ic_open_decide(IcHeaderStatus status, bool base_readable,
                            bool writable) {
    return no_throw([&] {
        return intellicache::OpenDecision::decide(status, base_readable,
                                                  writable);
    });
}

IcOpenAction ic_open_decide_without_base(IcHeaderStatus status) {
    return no_throw([&] {
        return intellicache::OpenDecision::decide_without_base(status);
    });
}

size_t ic_fingerprint_preamble(uint64_t base_size,
                               uint8_t out[IC_FINGERPRINT_PREAMBLE_MAX]) {
    return no_throw([&] {
        return intellicache::FingerprintPlan::preamble(
            base_size, std::span<uint8_t, IC_FINGERPRINT_PREAMBLE_MAX>(
                           out, IC_FINGERPRINT_PREAMBLE_MAX));
    });
}

size_t ic_fingerprint_plan(uint64_t base_size,
                           IcRange out[IC_FINGERPRINT_SAMPLES]) {
    return no_throw([&] {
        return intellicache::FingerprintPlan::ranges(
            base_size, std::span<IcRange, IC_FINGERPRINT_SAMPLES>(
                           out, IC_FINGERPRINT_SAMPLES));
    });
}

IcCore *ic_core_new(const IcGeometry *g, uint64_t instance,
                    uint64_t max_fetch_bytes, uint32_t max_inflight, char *why,
                    size_t why_len) {
    return no_throw([&]() -> IcCore * {
        intellicache::MessageBuffer msg(why, why_len);
        if (g == nullptr) {
            msg.set("no cache geometry");
            return nullptr;
        }
        auto core = intellicache::Core::create(*g, instance, max_fetch_bytes,
                                               max_inflight, msg);
        if (!core) {
            return nullptr;
        }
        /* The handle is small, but it may fail too: same answer. */
        auto *handle = new (std::nothrow) IcCore;
        if (handle == nullptr) {
            msg.set("cannot allocate the cache state");
            return nullptr;
        }
        handle->core = std::move(core);
        return handle;
    });
}

void ic_core_free(IcCore *core) {
    /* Destroying the buffer pool checks that the glue reclaimed it. */
    no_throw([&] { delete core; });
}

const IcGeometry *ic_core_geometry(const IcCore *core) {
    return no_throw([&] { return &core->core->geometry(); });
}

IcMetaStatus ic_core_load_meta_block(IcCore *core, uint64_t index,
                                     const uint8_t *buf) {
    return no_throw([&] { return core->core->load_meta_block(index, buf); });
}

void ic_core_encode_meta_block(const IcCore *core, uint64_t index,
                               uint8_t *out) {
    no_throw([&] { core->core->encode_meta_block(index, out); });
}

uint64_t ic_core_meta_block_offset(const IcCore *core, uint64_t index) {
    return no_throw([&] { return core->core->meta_block_offset(index); });
}

uint64_t ic_core_cache_offset(const IcCore *core, uint64_t offset) {
    return no_throw([&] { return core->core->cache_offset(offset); });
}

size_t ic_core_plan(IcCore *core, uint64_t offset, uint64_t bytes,
                    IcSegment *segs, size_t max_segs) {
    return no_throw([&]() -> size_t {
        if (segs == nullptr) {
            return 0;
        }
        return core->core->plan(offset, bytes, std::span(segs, max_segs));
    });
}

void ic_core_set_read_ahead(IcCore *core, uint64_t window) {
    no_throw([&] { core->core->set_read_ahead(window); });
}

bool ic_core_note_read(IcCore *core, uint64_t offset, uint64_t bytes,
                       uint64_t *ra_offset, uint64_t *ra_bytes) {
    return no_throw([&] {
        const auto ra = core->core->note_read(offset, bytes);
        if (!ra) {
            return false;
        }
        *ra_offset = ra->offset;
        *ra_bytes = ra->bytes;
        return true;
    });
}

size_t ic_core_plan_zeros(IcCore *core, uint64_t offset, uint64_t bytes,
                          IcSegment *seg) {
    return no_throw(
        [&] { return core->core->plan_zeros(offset, bytes, *seg); });
}

size_t ic_core_plan_read_ahead(IcCore *core, uint64_t offset, uint64_t bytes,
                               IcSegment *seg) {
    return no_throw(
        [&] { return core->core->plan_read_ahead(offset, bytes, *seg); });
}

size_t ic_core_plan_prefetch(IcCore *core, uint64_t offset, uint64_t bytes,
                             IcSegment *seg) {
    return no_throw(
        [&] { return core->core->plan_prefetch(offset, bytes, *seg); });
}

size_t ic_core_plan_refill(IcCore *core, uint64_t offset, uint64_t bytes,
                           IcSegment *seg) {
    return no_throw(
        [&] { return core->core->plan_refill(offset, bytes, *seg); });
}

void ic_core_fetch_set_opaque(IcCore *core, IcFetchId id, void *opaque) {
    no_throw([&] { core->core->fetch_set_opaque(id, opaque); });
}

void ic_core_fetch_done(IcCore *core, IcFetchId id, bool ok) {
    no_throw([&] { core->core->fetch_done(id, ok); });
}

void ic_core_fetch_stored(IcCore *core, IcFetchId id, bool ok) {
    no_throw([&] { core->core->fetch_stored(id, ok); });
}

void ic_core_fetch_dropped(IcCore *core, IcFetchId id) {
    no_throw([&] { core->core->fetch_dropped(id); });
}

bool ic_core_sync_begin(IcCore *core) {
    return no_throw([&] { return core->core->sync_begin(); });
}

size_t ic_core_sync_runs(const IcCore *core, IcMetaRun *runs, size_t max) {
    return no_throw([&] {
        return core->core->sync_runs(
            std::span(runs, runs != nullptr ? max : 0));
    });
}

void ic_core_sync_end(IcCore *core, bool ok) {
    no_throw([&] { core->core->sync_end(ok); });
}

bool ic_core_sync_needed(const IcCore *core) {
    return no_throw([&] { return core->core->sync_needed(); });
}

bool ic_core_idle(const IcCore *core) {
    return no_throw([&] { return core->core->idle(); });
}

IcCacheState ic_core_cache_state(const IcCore *core) {
    return no_throw([&] { return core->core->cache_state(); });
}

bool ic_core_cache_failed(IcCore *core, bool write) {
    return no_throw([&] { return core->core->cache_failed(write); });
}

void ic_core_set_active(IcCore *core, bool active) {
    no_throw([&] { core->core->set_active(active); });
}

void ic_core_apply_settings(IcCore *core, const IcSettings *set) {
    no_throw([&] { core->core->apply_settings(*set); });
}

IcPool *ic_pool_new(uint64_t size) {
    return no_throw([&]() -> IcPool * {
        IC_CHECK(size > 0, "a pool of 0 bytes");
        return new (std::nothrow) IcPool{intellicache::PoolBudget(size)};
    });
}

void ic_pool_free(IcPool *pool) {
    if (pool == nullptr) {
        return;
    }
    IC_CHECK(pool->pool.members() == 0,
             "freeing a pool that still has %zu members", pool->pool.members());
    delete pool;
}

uint64_t ic_pool_size(const IcPool *pool) {
    return no_throw([&] { return pool->pool.size(); });
}

uint64_t ic_pool_used(const IcPool *pool) {
    return no_throw([&] { return pool->pool.used(); });
}

size_t ic_pool_members(const IcPool *pool) {
    return no_throw([&] { return pool->pool.members(); });
}

void *ic_pool_victim(IcPool *pool) {
    return no_throw([&] { return pool->pool.victim(); });
}

bool ic_core_set_bound(IcCore *core, const IcSettings *set, IcPool *pool,
                       void *member, char *why, size_t why_len) {
    return no_throw([&] {
        intellicache::MessageBuffer msg(why, why_len);
        return core->core->set_bound(
            *set, pool != nullptr ? &pool->pool : nullptr, member, msg);
    });
}

bool ic_core_evict_needed(const IcCore *core) {
    return no_throw([&] { return core->core->evict_needed(); });
}

size_t ic_core_evict_begin(IcCore *core) {
    return no_throw([&] { return core->core->evict_begin(); });
}

size_t ic_core_evict_ranges(const IcCore *core, size_t from, IcRange *out,
                            size_t max) {
    return no_throw([&] {
        return core->core->evict_ranges(
            from, std::span(out, out != nullptr ? max : 0));
    });
}

bool ic_core_evict_durable(const IcCore *core) {
    return no_throw([&] { return core->core->evict_durable(); });
}

void ic_core_evict_end(IcCore *core) {
    no_throw([&] { core->core->evict_end(); });
}

size_t ic_core_unrecorded(const IcCore *core, uint64_t cache_offset,
                          uint64_t bytes, IcRange *out, size_t max) {
    return no_throw([&] {
        return core->core->unrecorded(cache_offset, bytes,
                                      std::span(out, out != nullptr ? max : 0));
    });
}

bool ic_core_slot_take(IcCore *core, IcFetchKind kind) {
    return no_throw([&] { return core->core->slot_take(kind); });
}

bool ic_core_slot_put(IcCore *core) {
    return no_throw([&] { return core->core->slot_put(); });
}

void ic_core_note_guest_miss(IcCore *core, uint64_t now_ms) {
    no_throw([&] { core->core->note_guest_miss(now_ms); });
}

bool ic_core_prefetch_slot_take(IcCore *core, uint64_t now_ms,
                                uint64_t *max_bytes) {
    return no_throw(
        [&] { return core->core->prefetch_slot_take(now_ms, *max_bytes); });
}

bool ic_core_store_admit(IcCore *core, IcFetchId id) {
    return no_throw([&] { return core->core->store_admit(id); });
}

bool ic_core_defer_take(IcCore *core, uint64_t now_ms, IcRange *range) {
    return no_throw([&] {
        const std::optional<IcRange> r = core->core->defer_take(now_ms);
        if (r) {
            *range = *r;
        }
        return r.has_value();
    });
}

void ic_core_note_thread_busy(IcCore *core, uint32_t permille) {
    core->core->note_thread_busy(permille);
}

bool ic_core_defer_pending(const IcCore *core) {
    return no_throw([&] { return core->core->defer_pending(); });
}

bool ic_core_store_writer_start(IcCore *core) {
    return no_throw([&] { return core->core->store_writer_start(); });
}

bool ic_core_store_next(IcCore *core, IcStoreJob *job) {
    return no_throw([&] { return core->core->store_next(*job); });
}

void *ic_core_buf_take(IcCore *core, uint64_t bytes) {
    return no_throw([&] { return core->core->buf_take(bytes); });
}

bool ic_core_buf_give(IcCore *core, void *buf, uint64_t bytes) {
    return no_throw([&] { return core->core->buf_give(buf, bytes); });
}

void *ic_core_buf_reclaim(IcCore *core) {
    return no_throw([&] { return core->core->buf_reclaim(); });
}

void ic_core_get_stats(const IcCore *core, IcStats *st) {
    no_throw([&] { *st = core->core->stats(); });
}

void ic_core_note_bypass(IcCore *core, uint64_t bytes) {
    no_throw([&] { core->core->note_bypass(bytes); });
}

void ic_core_note_hit_failed(IcCore *core, uint64_t bytes) {
    no_throw([&] { core->core->note_hit_failed(bytes); });
}

bool ic_core_cluster_present(const IcCore *core, uint64_t index) {
    return no_throw([&] { return core->core->cluster_present(index); });
}

uint64_t ic_core_present_run(const IcCore *core, uint64_t offset,
                             uint64_t bytes, bool *present) {
    return no_throw([&] {
        const auto run = core->core->present_run(offset, bytes);
        *present = run.present;
        return run.bytes;
    });
}

struct IcLatency {
    intellicache::LatencySet set;
};

IcLatency *ic_latency_new(void) {
    return new (std::nothrow) IcLatency;
}

void ic_latency_free(IcLatency *lat) {
    delete lat;
}

void ic_latency_record(IcLatency *lat, IcLatencyKind kind, uint64_t ns) {
    lat->set[kind].record(ns);
}

void ic_latency_get(const IcLatency *lat, IcLatencyKind kind,
                    IcLatencySnapshot *snap) {
    *snap = lat->set[kind].snapshot();
}

uint64_t ic_latency_bound(unsigned i) {
    IC_CHECK(i + 1 < IC_LATENCY_BINS,
             "ic_latency_bound() of bin %u: the last bin has no bound", i);
    return intellicache::LatencyHistogram::upper_bound_ns(i);
}

IcHealth *ic_health_new(IcBaseState initial) {
    return no_throw([&]() -> IcHealth * {
        auto *h = new (std::nothrow) IcHealth;
        if (h != nullptr) {
            h->health = intellicache::BaseHealth(initial);
        }
        return h;
    });
}

void ic_health_free(IcHealth *h) {
    delete h;
}

IcBaseState ic_health_state(const IcHealth *h) {
    return h->health.state();
}

bool ic_health_note(IcHealth *h, IcBaseEvent ev, IcBaseState *old) {
    if (old != nullptr) {
        *old = h->health.state();
    }
    return h->health.note(ev);
}

bool ic_health_fails_fast(const IcHealth *h, uint64_t miss_timeout_ms) {
    return h->health.fails_fast(miss_timeout_ms);
}

IcHealthTick ic_health_tick(const IcHealth *h, uint64_t now_ms,
                            bool oldest_pending, uint64_t oldest_pending_ms,
                            bool probe_running) {
    std::optional<uint64_t> oldest;
    if (oldest_pending) {
        oldest = oldest_pending_ms;
    }
    return h->health.tick(now_ms, oldest, probe_running);
}

bool ic_health_timer_needed(const IcHealth *h, bool reads_pending) {
    return intellicache::BaseHealth::timer_needed(h->health.state(),
                                                  reads_pending);
}

void ic_health_probe_started(IcHealth *h, uint64_t now_ms) {
    h->health.probe_started(now_ms);
}

void ic_health_count(IcHealth *h, IcHealthCounter c) {
    IC_CHECK(c >= 0 && c < IC_HEALTH_COUNTERS, "unknown health counter %d",
             static_cast<int>(c));
    h->counters.at(c)++;
}

uint64_t ic_health_counter(const IcHealth *h, IcHealthCounter c) {
    IC_CHECK(c >= 0 && c < IC_HEALTH_COUNTERS, "unknown health counter %d",
             static_cast<int>(c));
    return h->counters.at(c);
}

const char *ic_base_state_name(IcBaseState state) {
    switch (state) {
    case IC_BASE_UP:
        return "up";
    case IC_BASE_RETRYING:
        return "retrying";
    case IC_BASE_DOWN:
        return "down";
    }
    return "unknown";
}

bool ic_base_error_transient(int err) {
    return intellicache::RetryPolicy::transient(err);
}

bool ic_miss_retry(int err, unsigned attempt, uint64_t waited_ms,
                   uint64_t timeout_ms, uint64_t *delay_ms) {
    const auto delay = intellicache::RetryPolicy::delay_ms(
        err, attempt, waited_ms, timeout_ms);
    if (!delay) {
        return false;
    }
    *delay_ms = *delay;
    return true;
}

size_t ic_profile_encoded_size(uint64_t count) {
    return intellicache::ProfileCodec::encoded_size(count);
}

IcProfileStatus ic_profile_decode(const uint8_t *buf, size_t len,
                                  const IcProfileHeader *expected,
                                  IcProfileHeader *found,
                                  IcProfileEntry **entries, char *why,
                                  size_t why_len) {
    return no_throw([&] {
        intellicache::MessageBuffer msg(why, why_len);
        std::vector<IcProfileEntry> list;
        IcProfileHeader h{};
        const IcProfileStatus st = intellicache::ProfileCodec::decode(
            buf, len, expected, h, entries != nullptr ? &list : nullptr, msg);
        if (found != nullptr) {
            *found = h;
        }
        if (st == IC_PROFILE_OK && entries != nullptr) {
            /* malloc, not new: the glue frees it with free()/g_free(). */
            const std::size_t bytes =
                std::max<std::size_t>(list.size(), 1) * sizeof(IcProfileEntry);
            *entries = static_cast<IcProfileEntry *>(std::malloc(bytes));
            if (*entries == nullptr) {
                msg.set("cannot allocate %zu entries", list.size());
                return IC_PROFILE_CORRUPT;
            }
            std::memcpy(*entries, list.data(),
                        list.size() * sizeof(IcProfileEntry));
        }
        return st;
    });
}

IcProfileRecorder *ic_profile_recorder_new(const IcGeometry *g,
                                           const uint8_t *fingerprint,
                                           uint64_t start_ms) {
    try {
        return new IcProfileRecorder{
            intellicache::ProfileRecorder(*g, fingerprint, start_ms)};
    } catch (const std::bad_alloc &) {
        return nullptr;
    }
}

void ic_profile_recorder_free(IcProfileRecorder *r) {
    delete r;
}

void ic_profile_recorder_note(IcProfileRecorder *r, uint64_t offset,
                              uint64_t bytes, uint64_t now_ms) {
    no_throw([&] { r->recorder.note(offset, bytes, now_ms); });
}

uint64_t ic_profile_recorder_entries(const IcProfileRecorder *r) {
    return r->recorder.entries();
}

uint64_t ic_profile_recorder_dropped(const IcProfileRecorder *r) {
    return r->recorder.dropped();
}

size_t ic_profile_recorder_size(const IcProfileRecorder *r) {
    return r->recorder.encoded_size();
}

void ic_profile_recorder_encode(const IcProfileRecorder *r, uint8_t *out) {
    r->recorder.encode(out);
}
