/*
 * intellicache core: latency histograms.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_latency.hpp"

#include <algorithm>
#include <bit>

namespace intellicache {

static_assert(LatencyHistogram::upper_bound_ns(LatencyHistogram::kBins - 2) <
                  UINT64_MAX / 2,
              "the last bound must not overflow");

std::size_t LatencyHistogram::bin_of(std::uint64_t ns) {
    /*
     * [2^(i-1) us, 2^i us) is bin i: the bit width of the whole
     * microseconds.  Under 1 us the width is 0, bin 0.
     */
    const auto width = static_cast<std::size_t>(std::bit_width(ns / 1000));
    return std::min(width, kBins - 1);
}

void LatencyHistogram::record(std::uint64_t ns) {
    bins_[bin_of(ns)].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(ns, std::memory_order_relaxed);
}

IcLatencySnapshot LatencyHistogram::snapshot() const {
    IcLatencySnapshot snap{};
    for (std::size_t i = 0; i < kBins; i++) {
        snap.bins[i] = bins_[i].load(std::memory_order_relaxed);
    }
    snap.sum_ns = sum_ns_.load(std::memory_order_relaxed);
    return snap;
}

} // namespace intellicache
