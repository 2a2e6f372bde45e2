/*
 * intellicache core: latency histograms, recorded without a lock.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_LATENCY_HPP
#define IC_LATENCY_HPP

#include "intellicache-core.h"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace intellicache {

/*
 * A cumulative histogram of durations in fixed log2 bins: bin 0 holds
 * durations under 1 us, bin i (0 < i < kBins - 1) those in
 * [2^(i-1) us, 2^i us), the last bin everything from about 67 s on.
 * Fixed bins cost no configuration and make histograms of different
 * nodes and daemons add up; a factor of 2 per bin is what telling a
 * local SSD (tens of us) from a network base (ms) from an outage (s)
 * needs.
 *
 * Recording is wait-free: relaxed atomic adds, so readers of the node in
 * any thread record without the node's lock, and a snapshot taken
 * meanwhile may be a record or so behind in some bin (the bins and the
 * sum are not read as one).  That is enough for rates and percentiles.
 */
class LatencyHistogram {
public:
    static constexpr std::size_t kBins = IC_LATENCY_BINS;

    /* The exclusive upper bound of bin @i (i < kBins - 1), in ns. */
    static constexpr std::uint64_t upper_bound_ns(std::size_t i) {
        return std::uint64_t{1000} << i;
    }
    /* The bin a duration of @ns falls into. */
    static std::size_t bin_of(std::uint64_t ns);

    void record(std::uint64_t ns);
    IcLatencySnapshot snapshot() const;

private:
    std::array<std::atomic<std::uint64_t>, kBins> bins_{};
    std::atomic<std::uint64_t> sum_ns_{0};
};

/* One histogram per kind of operation (IcLatencyKind). */
class LatencySet {
public:
    LatencyHistogram &operator[](IcLatencyKind kind) {
        return histograms_.at(kind);
    }
    const LatencyHistogram &operator[](IcLatencyKind kind) const {
        return histograms_.at(kind);
    }

private:
    std::array<LatencyHistogram, IC_LATENCY_KINDS> histograms_;
};

} // namespace intellicache

#endif
