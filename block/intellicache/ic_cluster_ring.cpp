/*
 * intellicache core: a FIFO of cluster indices in a ring buffer.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_cluster_ring.hpp"

#include "ic_check.hpp"

#include <cinttypes>
#include <utility>

namespace intellicache {

namespace {

/* new[] without value-initialisation: slots are written before read. */
std::unique_ptr<std::uint32_t[]> allocate(std::uint64_t slots) {
    if (slots == 0) {
        return nullptr;
    }
    return std::unique_ptr<std::uint32_t[]>(
        new std::uint32_t[static_cast<std::size_t>(slots)]);
}

} // namespace

ClusterRing::ClusterRing(std::uint64_t slots)
    : buf_(allocate(slots)), slots_(slots) {}

void ClusterRing::push(std::uint32_t index) {
    IC_CHECK(size_ < slots_, "push into a full ring of %" PRIu64 " slots",
             slots_);
    std::uint64_t tail = head_ + size_;
    if (tail >= slots_) {
        tail -= slots_;
    }
    buf_[tail] = index;
    size_++;
}

std::uint32_t ClusterRing::pop() {
    IC_CHECK(size_ != 0, "pop from an empty ring");
    const std::uint32_t index = buf_[head_];
    head_++;
    if (head_ == slots_) {
        head_ = 0;
    }
    size_--;
    return index;
}

std::uint32_t ClusterRing::front() const {
    IC_CHECK(size_ != 0, "front of an empty ring");
    return buf_[head_];
}

void ClusterRing::resize(std::uint64_t slots) {
    IC_CHECK(slots >= size_,
             "ring of %" PRIu64 " indices resized to %" PRIu64 " slots", size_,
             slots);
    if (slots == slots_) {
        return;
    }
    std::unique_ptr<std::uint32_t[]> buf = allocate(slots);
    /* Copy the indices in order, so the new ring starts at slot 0. */
    for (std::uint64_t i = 0, from = head_; i < size_; i++) {
        buf[i] = buf_[from];
        if (++from == slots_) {
            from = 0;
        }
    }
    buf_ = std::move(buf);
    slots_ = slots;
    head_ = 0;
}

} // namespace intellicache
