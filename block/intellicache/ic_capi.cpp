/*
 * intellicache core: the extern "C" API (intellicache-core.h).
 *
 * Thin wrappers.  Exceptions must never unwind into the C glue; the only
 * ones the core can raise are allocation failures, so every entry point
 * runs its body through no_throw(), which turns them into std::terminate().
 *
 * Behaviour the header leaves open, decided here:
 *  - @why buffers are set to "" on success, so they always hold a string.
 *  - ic_header_encode(): version 0 means IC_FORMAT_VERSION.
 *  - ic_header_check(): @expected NULL skips the cluster size, base size
 *    and fingerprint comparisons; @found is zeroed, then filled as soon as
 *    the checksum is good (so it is valid for VERSION, CORRUPT layouts and
 *    every mismatch status).
 *  - ic_core_new(): max_fetch_bytes is also capped at IC_MAX_FETCH_LIMIT.
 *  - ic_core_plan(): a request reaching past the base is clamped to it;
 *    stats.read_requests counts calls (a read planned in several calls
 *    because max_segs was reached counts several times).
 *  - Unknown fetch ids, fetch_done() on a fetch that is not pending, and
 *    sync_end() without a running sync are ignored.
 *  - ic_core_sync_begin() also returns false while a sync is running.
 *  - Out-of-range metadata block indexes load as DAMAGED and encode as an
 *    all-zero block.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "ic_core.hpp"
#include "ic_geometry.hpp"
#include "ic_message.hpp"
#include "ic_meta_codec.hpp"

#include <new>
#include <span>
#include <utility>

/* The opaque handle of the C API. */
struct IcCore {
    std::unique_ptr<intellicache::Core> core;
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

IcCore *ic_core_new(const IcGeometry *g, uint64_t instance,
                    uint64_t max_fetch_bytes) {
    return no_throw([&]() -> IcCore * {
        if (g == nullptr) {
            return nullptr;
        }
        auto core = intellicache::Core::create(*g, instance, max_fetch_bytes);
        if (!core) {
            return nullptr;
        }
        return new IcCore{std::move(core)};
    });
}

void ic_core_free(IcCore *core) {
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

size_t ic_core_plan(IcCore *core, uint64_t offset, uint64_t bytes,
                    IcSegment *segs, size_t max_segs) {
    return no_throw([&]() -> size_t {
        if (segs == nullptr) {
            return 0;
        }
        return core->core->plan(offset, bytes, std::span(segs, max_segs));
    });
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

void ic_core_set_read_ahead(IcCore *core, uint64_t window) {
    no_throw([&] { core->core->set_read_ahead(window); });
}

bool ic_core_note_read(IcCore *core, uint64_t offset, uint64_t bytes,
                       uint64_t *ra_offset, uint64_t *ra_bytes) {
    bool found = false;
    no_throw([&] {
        const auto ra = core->core->note_read(offset, bytes);
        if (ra) {
            *ra_offset = ra->offset;
            *ra_bytes = ra->bytes;
            found = true;
        }
    });
    return found;
}

size_t ic_core_plan_read_ahead(IcCore *core, uint64_t offset, uint64_t bytes,
                               IcSegment *seg) {
    std::size_t n = 0;
    no_throw([&] { n = core->core->plan_read_ahead(offset, bytes, *seg); });
    return n;
}

void ic_core_fetch_dropped(IcCore *core, IcFetchId id) {
    no_throw([&] { core->core->fetch_dropped(id); });
}

bool ic_core_sync_begin(IcCore *core) {
    return no_throw([&] { return core->core->sync_begin(); });
}

size_t ic_core_sync_blocks(const IcCore *core, uint64_t *blocks, size_t max) {
    return no_throw([&]() -> size_t {
        if (blocks == nullptr) {
            return 0;
        }
        return core->core->sync_blocks(std::span(blocks, max));
    });
}

size_t ic_core_sync_block_count(const IcCore *core) {
    return no_throw([&] { return core->core->sync_block_count(); });
}

void ic_core_sync_end(IcCore *core, bool ok) {
    no_throw([&] { core->core->sync_end(ok); });
}

bool ic_core_sync_needed(const IcCore *core) {
    return no_throw([&] { return core->core->sync_needed(); });
}

void ic_core_get_stats(const IcCore *core, IcStats *st) {
    no_throw([&] { *st = core->core->stats(); });
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
