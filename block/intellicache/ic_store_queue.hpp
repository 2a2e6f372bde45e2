/*
 * intellicache core: fetched data waiting to be written into the cache.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_STORE_QUEUE_HPP
#define IC_STORE_QUEUE_HPP

#include "intellicache-core.h"

#include <cstdint>
#include <deque>
#include <optional>

namespace intellicache {

/*
 * The store pipeline's bookkeeping: a FIFO of admitted fetches, the bytes
 * they hold (the backlog, bounded by IC_STORE_BACKLOG_LIMIT) and the store
 * writers running (at most IC_STORE_WRITERS).
 *
 * A job is admitted (push), handed to a writer (pop) and finally released
 * (stored or dropped).  The backlog counts its bytes from push to release,
 * not to pop: the glue holds the buffer until the write completes, and the
 * limit is there to bound that memory.  Which fetch a job is, and whether
 * it is written, is the core's business; this only counts.
 *
 * A running writer holds at most one job at a time and exits only when it
 * finds the queue empty, so queued jobs never wait for a writer that is
 * not coming.  Another writer is started only for queued jobs that the
 * writers already running will not take next: a writer started but not
 * yet run (the glue may schedule it) counts as taking one, so admitting
 * one fetch starts one writer, not IC_STORE_WRITERS.
 */
class StoreQueue {
public:
    /* Whether @bytes more fit in the backlog. */
    bool fits(std::uint64_t bytes) const {
        return bytes <= IC_STORE_BACKLOG_LIMIT - backlog_;
    }
    /* Admit fetch @id of @bytes (which fits()). */
    void push(IcFetchId id, std::uint64_t bytes);
    /* The oldest queued fetch, taken off the queue (still in the backlog). */
    std::optional<IcFetchId> pop();
    /* A job of @bytes is stored or dropped: out of the backlog. */
    void release(std::uint64_t bytes);

    /*
     * ic_core_store_writer_start(): true (one more writer counted) while
     * fewer than IC_STORE_WRITERS run and more jobs are queued than running
     * writers are free to take.
     */
    bool writer_start();
    /* A writer found the queue empty and exits. */
    void writer_stop();

    std::uint64_t backlog() const { return backlog_; }
    /* Jobs admitted and not released: queued or being written. */
    std::uint64_t jobs() const { return jobs_; }
    std::uint32_t writers() const { return writers_; }

private:
    std::deque<IcFetchId> queue_;
    std::uint64_t backlog_ = 0;
    std::uint64_t jobs_ = 0;
    std::uint32_t writers_ = 0;
};

} // namespace intellicache

#endif
