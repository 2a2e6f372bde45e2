/*
 * intellicache core: which stored clusters may be recorded on disk.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_DURABILITY_HPP
#define IC_DURABILITY_HPP

#include <cstdint>
#include <span>
#include <vector>

namespace intellicache {

/*
 * A cluster may be marked present on disk only once its data is durable,
 * otherwise a crash could leave a bit pointing at garbage.  Stored clusters
 * are "pending" until a sync starts; sync_begin() moves them to "syncing";
 * the glue then flushes the cache file (their data is now durable), writes
 * the touched metadata blocks and flushes again (the records are durable);
 * sync_end() settles them.
 *
 * The durable view of the bitmap is "present minus pending": it needs no
 * second bitmap, only the (small) list of recently stored ranges.  Ranges
 * are kept as the fetches stored them, unsorted: appending is O(1) and a
 * block encode scans them once.
 *
 * Clusters freed by eviction take the same path the other way: their bits
 * are already clear in memory, and their blocks must be written (and
 * flushed) before their data may be freed, or a crash could leave a bit
 * set over a hole.  note_cleared() makes their blocks part of the next
 * sync, and cleared_unsettled() says when that sync has ended well.
 */
class DurabilityTracker {
public:
    /* Consecutive metadata blocks [first, first + count). */
    struct BlockRun {
        std::uint64_t first;
        std::uint64_t count;
    };

    /* Clusters [first, first + count) were stored (are now present). */
    void note_stored(std::uint64_t first, std::uint64_t count);
    /* Clusters [first, first + count) were cleared (are no longer present). */
    void note_cleared(std::uint64_t first, std::uint64_t count);

    /* False if nothing is pending or a sync is already running. */
    bool sync_begin();
    /*
     * The metadata blocks the running sync must write, as runs of
     * consecutive blocks in block order, each of at most IC_META_BATCH
     * blocks (one write request each).
     */
    std::span<const BlockRun> sync_runs() const { return runs_; }
    /* Ends the running sync (there must be one). */
    void sync_end(bool ok);

    bool sync_needed() const { return !pending_.empty(); }
    bool sync_running() const { return running_; }

    /*
     * Clears, in @words (bits of clusters first_cluster + i), the clusters
     * whose data is not yet known durable.  Syncing clusters stay set: the
     * glue flushed their data before it writes blocks.
     */
    void exclude_pending(std::uint64_t first_cluster,
                         std::span<std::uint64_t> words) const;

    /* Clusters noted stored and not yet settled by a successful sync. */
    std::uint64_t unsettled_clusters() const {
        return pending_clusters_ + syncing_clusters_;
    }
    /* Clusters noted cleared and not yet settled by a successful sync. */
    std::uint64_t cleared_unsettled() const {
        return pending_cleared_ + syncing_cleared_;
    }

private:
    struct Range {
        std::uint64_t first;
        std::uint64_t count;
        bool cleared; /* note_cleared(): nothing to exclude */
    };

    std::vector<Range> pending_;
    std::vector<Range> syncing_;
    std::vector<std::uint64_t> blocks_; /* scratch of sync_begin() */
    std::vector<BlockRun> runs_;
    std::uint64_t pending_clusters_ = 0;
    std::uint64_t syncing_clusters_ = 0;
    std::uint64_t pending_cleared_ = 0;
    std::uint64_t syncing_cleared_ = 0;
    bool running_ = false;
};

} // namespace intellicache

#endif
