/*
 * intellicache core: spotting scans, whose data a bounded cache does not
 * keep.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_scan_filter.hpp"

#include <algorithm>

namespace intellicache {

bool ScanFilter::is_scan(const Stream &s) const {
    const std::uint64_t span = s.front - s.start;
    return threshold_ != 0 && span >= threshold_ && s.forward * 4 >= span;
}

bool ScanFilter::note_read(std::uint64_t offset, std::uint64_t bytes) {
    if (threshold_ == 0 || bytes == 0) {
        return false;
    }
    const std::uint64_t end = offset + bytes;
    Stream *s = nullptr;
    Stream *lru = streams_.data();
    for (Stream &candidate : streams_) {
        if (candidate.used && offset >= candidate.start &&
            offset <= candidate.front + kSlack &&
            end + kSlack >= candidate.front) {
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
        *s = Stream{.start = offset, .front = offset, .used = true};
    }
    if (end > s->front) {
        s->forward += std::min(bytes, end - s->front);
        s->front = end;
    }
    s->last_use = ++clock_;
    return is_scan(*s);
}

bool ScanFilter::in_scan(std::uint64_t offset) const {
    return std::ranges::any_of(streams_, [&](const Stream &s) {
        return s.used && offset >= s.start && offset < s.front && is_scan(s);
    });
}

} // namespace intellicache
