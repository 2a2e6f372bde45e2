/*
 * intellicache core: spotting scans, whose data a bounded cache does not
 * keep.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_scan_filter.hpp"

#include <algorithm>

namespace intellicache {

bool ScanFilter::note_read(std::uint64_t offset, std::uint64_t bytes) {
    if (threshold_ == 0 || bytes == 0) {
        return false;
    }
    Stream *s = nullptr;
    Stream *lru = streams_.data();
    for (Stream &candidate : streams_) {
        if (candidate.used && candidate.next == offset) {
            s = &candidate;
            break;
        }
        if (!candidate.used ||
            (lru->used && candidate.last_use < lru->last_use)) {
            lru = &candidate;
        }
    }
    if (s == nullptr) {
        s = lru;
        *s = Stream{};
        s->used = true;
    }
    s->next = offset + bytes;
    s->length += bytes;
    s->last_use = ++clock_;
    return s->length >= threshold_;
}

bool ScanFilter::in_scan(std::uint64_t offset) const {
    if (threshold_ == 0) {
        return false;
    }
    return std::ranges::any_of(streams_, [&](const Stream &s) {
        return s.used && s.length >= threshold_ && offset < s.next &&
               offset >= s.next - s.length;
    });
}

} // namespace intellicache
