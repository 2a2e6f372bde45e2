/*
 * intellicache core: fetched data waiting to be written into the cache.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_store_queue.hpp"

#include "ic_check.hpp"

#include <cinttypes>

namespace intellicache {

void StoreQueue::push(IcFetchId id, std::uint64_t bytes) {
    IC_CHECK(fits(bytes), "store backlog overflow");
    queue_.push_back(id);
    backlog_ += bytes;
    jobs_++;
}

std::optional<IcFetchId> StoreQueue::pop() {
    if (queue_.empty()) {
        return std::nullopt;
    }
    const IcFetchId id = queue_.front();
    queue_.pop_front();
    return id;
}

void StoreQueue::release(std::uint64_t bytes) {
    IC_CHECK(jobs_ > 0 && bytes <= backlog_,
             "releasing %" PRIu64 " bytes from a store backlog of %" PRIu64
             " bytes in %" PRIu64 " jobs",
             bytes, backlog_, jobs_);
    backlog_ -= bytes;
    jobs_--;
}

bool StoreQueue::writer_start() {
    /* Writers holding a job; the others will call pop() next. */
    const std::uint64_t holding = jobs_ - queue_.size();
    const std::uint64_t free = writers_ > holding ? writers_ - holding : 0;
    if (writers_ >= IC_STORE_WRITERS || queue_.size() <= free) {
        return false;
    }
    writers_++;
    return true;
}

void StoreQueue::writer_stop() {
    IC_CHECK(writers_ > 0, "ic_core_store_next() without a writer started by "
                           "ic_core_store_writer_start()");
    writers_--;
}

} // namespace intellicache
