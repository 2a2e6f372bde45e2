/*
 * intellicache core: fetch buffers kept for reuse.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_buffer_pool.hpp"

#include "ic_check.hpp"

namespace intellicache {

BufferPool::~BufferPool() {
    /* The memory is the glue's: freeing it here is impossible, and
     * forgetting it would leak it silently. */
    IC_CHECK(count_ == 0,
             "%zu pooled fetch buffer(s) left: the glue must call "
             "ic_core_buf_reclaim() until it returns NULL before "
             "ic_core_free()",
             count_);
}

void *BufferPool::remove(std::size_t i) {
    void *buf = entries_[i].buf;
    entries_[i] = entries_[--count_];
    entries_[count_] = Entry{};
    return buf;
}

void *BufferPool::take(std::uint64_t bytes) {
    if (bytes != size_) {
        return nullptr;
    }
    for (std::size_t i = count_; i > 0; i--) {
        if (entries_[i - 1].bytes == size_) {
            return remove(i - 1);
        }
    }
    return nullptr;
}

bool BufferPool::give(void *buf, std::uint64_t bytes) {
    if (buf == nullptr) {
        return false;
    }
    for (std::size_t i = 0; i < count_; i++) {
        IC_CHECK(entries_[i].buf != buf,
                 "ic_core_buf_give() of buffer %p, which is pooled already",
                 buf);
    }
    if (bytes != size_ || count_ == entries_.size()) {
        return false;
    }
    entries_[count_++] = Entry{buf, bytes};
    return true;
}

void *BufferPool::reclaim(bool idle) {
    for (std::size_t i = 0; i < count_; i++) {
        if (entries_[i].bytes != size_) {
            return remove(i);
        }
    }
    if (idle && count_ > 0) {
        return remove(count_ - 1);
    }
    return nullptr;
}

} // namespace intellicache
