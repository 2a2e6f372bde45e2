/*
 * intellicache core: a FIFO of cluster indices in a ring buffer.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_CLUSTER_RING_HPP
#define IC_CLUSTER_RING_HPP

#include <cstdint>
#include <memory>

namespace intellicache {

/*
 * A queue of cluster indices with room for a fixed number of them (slots),
 * for the FIFOs of the eviction policy.  push() and pop() never allocate:
 * only the constructor and resize() do, and they throw std::bad_alloc.
 * Indices are kept in 32 bits (a base has at most IC_MAX_CLUSTER_COUNT
 * clusters), so a ring costs 4 bytes per slot whether used or not.  The
 * slots are not initialised: the memory of a large, mostly empty ring is
 * only touched as it fills.
 */
class ClusterRing {
public:
    ClusterRing() = default;
    /* An empty ring with room for @slots indices. */
    explicit ClusterRing(std::uint64_t slots);

    std::uint64_t size() const { return size_; }
    std::uint64_t slots() const { return slots_; }
    bool empty() const { return size_ == 0; }
    bool full() const { return size_ == slots_; }

    /* Appends @index; the ring must not be full. */
    void push(std::uint32_t index);
    /* Removes and returns the oldest index; the ring must not be empty. */
    std::uint32_t pop();
    /* The oldest index, left in place; the ring must not be empty. */
    std::uint32_t front() const;

    /*
     * Room for @slots indices, which must be at least size(): the indices
     * held stay, in order.  Reallocates unless @slots is already the room.
     */
    void resize(std::uint64_t slots);

    std::uint64_t memory_bytes() const {
        return slots_ * sizeof(std::uint32_t);
    }

private:
    std::unique_ptr<std::uint32_t[]> buf_;
    std::uint64_t slots_ = 0;
    std::uint64_t head_ = 0; /* slot of the oldest index */
    std::uint64_t size_ = 0;
};

} // namespace intellicache

#endif
