/*
 * intellicache core: detection of sequential read streams, for read-ahead.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_SEQUENTIAL_HPP
#define IC_SEQUENTIAL_HPP

#include <array>
#include <cstdint>
#include <optional>

namespace intellicache {

/* A range of the base to read ahead. */
struct ReadAhead {
    std::uint64_t offset;
    std::uint64_t bytes;
};

/*
 * Follows a few concurrent sequential streams (several VMs booting from one
 * base interleave their reads).  A read that starts where a stream's last
 * read ended continues that stream; any other read starts a new stream,
 * replacing the least recently used one.  Once a stream has continued
 * kTrigger times, each read asks for read-ahead of the window after it,
 * but only for what earlier read-ahead of the stream has not covered and
 * only once at least half a window is new, so read-ahead is issued in
 * large pieces.
 */
class SequentialDetector {
public:
    static constexpr unsigned kStreams = 4;
    static constexpr unsigned kTrigger = 2;

    /* @window: bytes to keep read ahead of a stream (0 disables). */
    SequentialDetector(std::uint64_t window, std::uint64_t limit)
        : window_(window), limit_(limit) {}

    /* A new window for later reads; the streams followed so far stay. */
    void set_window(std::uint64_t window) { window_ = window; }

    /* Note the read [offset, offset + bytes); return what to read ahead. */
    std::optional<ReadAhead> note_read(std::uint64_t offset,
                                       std::uint64_t bytes);

private:
    struct Stream {
        std::uint64_t next = 0;     /* where the stream's next read starts */
        std::uint64_t ahead = 0;    /* end of what was read ahead */
        std::uint64_t last_use = 0; /* for LRU replacement */
        unsigned run = 0;           /* reads that continued the stream */
        bool used = false;
    };

    Stream &stream_for(std::uint64_t offset);

    std::uint64_t window_;
    std::uint64_t limit_; /* the base size: nothing is read past it */
    std::uint64_t clock_ = 0;
    std::array<Stream, kStreams> streams_{};
};

} // namespace intellicache

#endif
