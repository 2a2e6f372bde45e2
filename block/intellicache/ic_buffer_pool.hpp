/*
 * intellicache core: fetch buffers kept for reuse.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_BUFFER_POOL_HPP
#define IC_BUFFER_POOL_HPP

#include "intellicache-core.h"

#include <array>
#include <cstddef>
#include <cstdint>

namespace intellicache {

/*
 * Up to IC_BUF_POOL_SIZE buffers of the current max-fetch size (see
 * intellicache-core.h, Fetch buffers).  Holds pointers only: the glue
 * allocates and frees the memory, so the pool must be emptied through
 * reclaim() before it is destroyed (the destructor checks).
 *
 * Only the current size is pooled and handed out.  After set_size() the
 * buffers of the old size can never be used again, so reclaim() returns
 * them at once; buffers of the current size are kept while the node is
 * busy (the next fetch wants one) and returned once it is idle.
 *
 * A fixed array: giving a buffer back never allocates, and lookups scan at
 * most 16 entries.
 */
class BufferPool {
public:
    explicit BufferPool(std::uint64_t size) : size_(size) {}
    ~BufferPool();
    BufferPool(const BufferPool &) = delete;
    BufferPool &operator=(const BufferPool &) = delete;
    BufferPool(BufferPool &&) = delete;
    BufferPool &operator=(BufferPool &&) = delete;

    /* A pooled buffer of @bytes, or nullptr. */
    void *take(std::uint64_t bytes);
    /* True if @buf of @bytes was kept. */
    bool give(void *buf, std::uint64_t bytes);
    /* A buffer for the glue to free, or nullptr (see the class comment). */
    void *reclaim(bool idle);

    void set_size(std::uint64_t size) { size_ = size; }
    std::uint64_t size() const { return size_; }
    std::size_t count() const { return count_; }

private:
    struct Entry {
        void *buf;
        std::uint64_t bytes;
    };

    /* Removes entry @i (order does not matter). */
    void *remove(std::size_t i);

    std::uint64_t size_;
    std::array<Entry, IC_BUF_POOL_SIZE> entries_{};
    std::size_t count_ = 0;
};

} // namespace intellicache

#endif
