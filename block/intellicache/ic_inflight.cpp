/*
 * intellicache core: the fetches in flight.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_inflight.hpp"

#include <cassert>
#include <iterator>
#include <limits>

namespace intellicache {

const char *fetch_state_name(FetchState state) {
    switch (state) {
    case FetchState::pending:
        return "pending";
    case FetchState::done:
        return "done";
    case FetchState::queued:
        return "queued";
    case FetchState::writing:
        return "writing";
    }
    return "?";
}

Fetch &InflightTable::add(std::uint64_t first, std::uint64_t count) {
    assert(count > 0);
    assert(around(first).covering == nullptr);
    assert(around(first).next_first >= first + count);
    const IcFetchId id = next_id_++;
    Fetch fetch{};
    fetch.id = id;
    fetch.first = first;
    fetch.count = count;
    fetch.state = FetchState::pending;
    auto [it, inserted] = by_first_.emplace(first, fetch);
    assert(inserted);
    (void)inserted;
    first_by_id_.emplace(id, first);
    return it->second;
}

Fetch *InflightTable::find(IcFetchId id) {
    const auto it = first_by_id_.find(id);
    if (it == first_by_id_.end()) {
        return nullptr;
    }
    return &by_first_.at(it->second);
}

const Fetch *InflightTable::find(IcFetchId id) const {
    const auto it = first_by_id_.find(id);
    if (it == first_by_id_.end()) {
        return nullptr;
    }
    return &by_first_.at(it->second);
}

bool InflightTable::remove(IcFetchId id) {
    const auto it = first_by_id_.find(id);
    if (it == first_by_id_.end()) {
        return false;
    }
    by_first_.erase(it->second);
    first_by_id_.erase(it);
    return true;
}

InflightTable::Neighbourhood
InflightTable::around(std::uint64_t cluster) const {
    Neighbourhood n{nullptr, std::numeric_limits<std::uint64_t>::max()};
    auto next = by_first_.upper_bound(cluster);
    if (next != by_first_.end()) {
        n.next_first = next->first;
    }
    if (next != by_first_.begin()) {
        const Fetch &prev = std::prev(next)->second;
        if (cluster - prev.first < prev.count) {
            n.covering = &prev;
        }
    }
    return n;
}

} // namespace intellicache
