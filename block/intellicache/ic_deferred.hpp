/*
 * intellicache core: guests' misses an unbounded cache stores later.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_DEFERRED_HPP
#define IC_DEFERRED_HPP

#include "ic_cluster_ring.hpp"

#include <cstdint>
#include <optional>

namespace intellicache {

/*
 * The clusters of guests' misses that an unbounded cache served without
 * storing them, because storing them then would have slowed the guests
 * down for nothing (few clusters were read again, see ReuseMeter).  They
 * are fetched again and stored once guests are quiet, so that a disk read
 * once still ends up cached whole.
 *
 * A FIFO of cluster indices with room for kSlots of them: 1 GiB of 4 KiB
 * clusters, 16 GiB of 64 KiB ones.  Its 1 MiB is allocated at the first
 * push, touched only as it fills (4 bytes per cluster deferred), and
 * given back when it empties.  When it is full, misses are stored at once
 * again: nothing a guest read is ever left out of the cache for lack of
 * room here.  The queue is not durable:
 * what a crash or a close finds in it is simply not cached, as if it had
 * not been read.  A cluster may be queued twice (read again while
 * queued); the second fetch finds it cached and costs nothing.
 */
class DeferredStores {
public:
    static constexpr std::uint64_t kSlots = 262144;

    struct Run {
        std::uint64_t first;
        std::uint64_t count;
    };

    /* Whether @count more clusters fit. */
    bool room(std::uint64_t count) const {
        return ring_.size() + count <= kSlots;
    }
    /*
     * Queues clusters [first, first + count); room() must say they fit.
     * Throws std::bad_alloc if the first push cannot allocate the ring.
     */
    void push(std::uint64_t first, std::uint64_t count);
    /*
     * Removes the oldest queued cluster and those that follow it in the
     * queue as its neighbours in the base, up to @max clusters in all.
     */
    std::optional<Run> take(std::uint64_t max);
    /* Forgets everything queued. */
    void clear();

    std::uint64_t size() const { return ring_.size(); }
    std::uint64_t memory_bytes() const { return ring_.memory_bytes(); }

private:
    ClusterRing ring_;
};

/*
 * Whether the thread that serves the node is busy enough that storing a
 * miss takes its time from guests.  The glue measures the share of the
 * thread's time spent on a CPU or waiting for one over short windows and
 * reports it here.
 *
 * Storing a miss about doubles what serving it costs the thread, so once
 * misses are deferred the measure falls by about half, and it would rise
 * again as soon as they were stored: the state changes at two levels, a
 * factor of two apart, so that it does not flip at every window.
 */
class BusyGate {
public:
    static constexpr std::uint32_t kOnPermille = 600;
    static constexpr std::uint32_t kOffPermille = 300;

    /* The thread wanted a CPU @permille thousandths of the last window. */
    void note(std::uint32_t permille) {
        if (permille >= kOnPermille) {
            busy_ = true;
        } else if (permille < kOffPermille) {
            busy_ = false;
        }
    }
    bool busy() const { return busy_; }

private:
    bool busy_ = false;
};

} // namespace intellicache

#endif
