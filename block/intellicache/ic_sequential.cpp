/*
 * intellicache core: detection of sequential read streams, for read-ahead.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_sequential.hpp"

#include <algorithm>

namespace intellicache {

SequentialDetector::Stream &
SequentialDetector::stream_for(std::uint64_t offset) {
    Stream *lru = streams_.data();
    for (Stream &s : streams_) {
        if (s.used && s.next == offset) {
            s.run++;
            return s;
        }
        if (!s.used || (lru->used && s.last_use < lru->last_use)) {
            lru = &s;
        }
    }
    *lru = Stream{};
    lru->used = true;
    return *lru;
}

std::optional<ReadAhead> SequentialDetector::note_read(std::uint64_t offset,
                                                       std::uint64_t bytes) {
    if (bytes == 0) {
        return std::nullopt;
    }
    Stream &s = stream_for(offset);
    s.last_use = ++clock_;
    s.next = offset + bytes;
    if (window_ == 0 || s.run < kTrigger) {
        return std::nullopt;
    }
    const std::uint64_t from = std::max(s.next, s.ahead);
    const std::uint64_t to = std::min(s.next + window_, limit_);
    if (to <= from || (to - from < window_ / 2 && to < limit_)) {
        return std::nullopt;
    }
    s.ahead = to;
    return ReadAhead{from, to - from};
}

} // namespace intellicache
