/*
 * intellicache core: which stored clusters may be recorded on disk.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_durability.hpp"

#include "ic_check.hpp"
#include "ic_geometry.hpp"

#include <algorithm>

namespace intellicache {

void DurabilityTracker::note_stored(std::uint64_t first, std::uint64_t count) {
    if (count == 0) {
        return;
    }
    pending_.push_back(Range{first, count, false});
    pending_clusters_ += count;
}

void DurabilityTracker::note_cleared(std::uint64_t first, std::uint64_t count) {
    if (count == 0) {
        return;
    }
    pending_.push_back(Range{first, count, true});
    pending_cleared_ += count;
}

bool DurabilityTracker::sync_begin() {
    if (running_ || pending_.empty()) {
        return false;
    }
    /* Swap rather than move: the old syncing_ keeps its capacity for the
     * next round of pending ranges. */
    syncing_.clear();
    std::swap(syncing_, pending_);
    syncing_clusters_ = pending_clusters_;
    pending_clusters_ = 0;
    syncing_cleared_ = pending_cleared_;
    pending_cleared_ = 0;

    blocks_.clear();
    for (const Range &r : syncing_) {
        const std::uint64_t first_block = r.first / kMetaBlockClusters;
        const std::uint64_t last_block =
            (r.first + r.count - 1) / kMetaBlockClusters;
        for (std::uint64_t b = first_block; b <= last_block; b++) {
            blocks_.push_back(b);
        }
    }
    std::sort(blocks_.begin(), blocks_.end());
    blocks_.erase(std::unique(blocks_.begin(), blocks_.end()), blocks_.end());

    runs_.clear();
    for (const std::uint64_t b : blocks_) {
        if (!runs_.empty() && runs_.back().first + runs_.back().count == b &&
            runs_.back().count < IC_META_BATCH) {
            runs_.back().count++;
        } else {
            runs_.push_back(BlockRun{b, 1});
        }
    }
    running_ = true;
    return true;
}

void DurabilityTracker::sync_end(bool ok) {
    IC_CHECK(running_, "ic_core_sync_end() without a running sync");
    if (!ok) {
        /* Not known durable after all: retry with the next sync. */
        pending_.insert(pending_.end(), syncing_.begin(), syncing_.end());
        pending_clusters_ += syncing_clusters_;
        pending_cleared_ += syncing_cleared_;
    }
    syncing_.clear();
    syncing_clusters_ = 0;
    syncing_cleared_ = 0;
    runs_.clear();
    running_ = false;
}

void DurabilityTracker::exclude_pending(std::uint64_t first_cluster,
                                        std::span<std::uint64_t> words) const {
    const std::uint64_t end_cluster = first_cluster + words.size() * 64;
    for (const Range &r : pending_) {
        if (r.cleared) {
            continue;
        }
        const std::uint64_t lo = std::max(r.first, first_cluster);
        const std::uint64_t hi = std::min(r.first + r.count, end_cluster);
        for (std::uint64_t c = lo; c < hi; c++) {
            const std::uint64_t bit = c - first_cluster;
            words[bit / 64] &= ~(std::uint64_t{1} << (bit % 64));
        }
    }
}

} // namespace intellicache
