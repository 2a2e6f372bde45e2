/*
 * intellicache core: the state of one cache, behind the C API.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_core.hpp"

#include "ic_meta_codec.hpp"
#include "ic_planner.hpp"

#include <algorithm>
#include <cstring>

namespace intellicache {

std::unique_ptr<Core> Core::create(const IcGeometry &g, std::uint64_t instance,
                                   std::uint64_t max_fetch_bytes) {
    const auto adopted = Geometry::adopt(g);
    if (!adopted) {
        return nullptr;
    }
    /* Whole clusters, at least one, and never beyond the format's limit. */
    const std::uint64_t bytes = std::min(
        max_fetch_bytes, static_cast<std::uint64_t>(IC_MAX_FETCH_LIMIT));
    const std::uint64_t clusters =
        std::max<std::uint64_t>(1, bytes / adopted->cluster_size());
    return std::unique_ptr<Core>(new Core(*adopted, instance, clusters));
}

Core::Core(const Geometry &geometry, std::uint64_t instance,
           std::uint64_t max_fetch_clusters)
    : geometry_(geometry), instance_(instance),
      max_fetch_clusters_(max_fetch_clusters),
      present_(geometry.cluster_count()), sequential_(0, geometry.base_size()) {
}

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

std::size_t Core::plan(std::uint64_t offset, std::uint64_t bytes,
                       std::span<IcSegment> segs) {
    /* Every call counts: a read planned in several calls (max_segs
     * reached) counts once per call. */
    stats_.read_requests++;
    PlanCounters counters;
    const std::size_t n =
        Planner(geometry_, present_, inflight_, max_fetch_clusters_)
            .plan(offset, bytes, segs, counters);
    stats_.hit_bytes += counters.hit_bytes;
    stats_.miss_bytes += counters.miss_bytes;
    stats_.wait_bytes += counters.wait_bytes;
    stats_.fetches += counters.fetches;
    return n;
}

void Core::set_read_ahead(std::uint64_t window) {
    sequential_ = SequentialDetector(window, geometry_.base_size());
}

std::size_t Core::plan_read_ahead(std::uint64_t offset, std::uint64_t bytes,
                                  IcSegment &seg) {
    PlanCounters counters;
    const std::size_t n =
        Planner(geometry_, present_, inflight_, max_fetch_clusters_)
            .plan(offset, bytes, std::span(&seg, 1), counters);
    if (n == 1 && seg.kind == IC_SEG_FETCH) {
        stats_.fetches++;
        stats_.readahead_bytes += seg.fetch_bytes;
    }
    return n;
}

void Core::fetch_set_opaque(IcFetchId id, void *opaque) {
    if (Fetch *f = inflight_.find(id)) {
        f->opaque = opaque;
    }
}

void Core::fetch_done(IcFetchId id, bool ok) {
    Fetch *f = inflight_.find(id);
    if (f == nullptr || f->state != FetchState::pending) {
        return;
    }
    if (ok) {
        f->state = FetchState::done;
        stats_.fetched_bytes += geometry_.clusters_end(f->first + f->count) -
                                geometry_.cluster_start(f->first);
    } else {
        /* Its clusters were never marked present: forgetting the fetch
         * makes them absent, so the next plan fetches them again. */
        stats_.fetch_errors++;
        inflight_.remove(id);
    }
}

void Core::fetch_stored(IcFetchId id, bool ok) {
    const Fetch *f = inflight_.find(id);
    if (f == nullptr) {
        return;
    }
    if (ok) {
        stats_.stored_bytes += geometry_.clusters_end(f->first + f->count) -
                               geometry_.cluster_start(f->first);
        present_.set_range(f->first, f->count);
        durability_.note_stored(f->first, f->count);
    } else {
        stats_.store_errors++;
    }
    inflight_.remove(id);
}

void Core::fetch_dropped(IcFetchId id) {
    if (inflight_.find(id) == nullptr) {
        return;
    }
    stats_.store_skipped++;
    inflight_.remove(id);
}

std::size_t Core::sync_blocks(std::span<std::uint64_t> out) const {
    const auto blocks = durability_.sync_blocks();
    const std::size_t n = std::min(out.size(), blocks.size());
    std::copy_n(blocks.begin(), n, out.begin());
    return n;
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
    return st;
}

} // namespace intellicache
