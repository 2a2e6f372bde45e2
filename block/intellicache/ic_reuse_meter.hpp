/*
 * intellicache core: how often the clusters an unbounded cache stores are
 * read again.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_REUSE_METER_HPP
#define IC_REUSE_METER_HPP

#include <array>
#include <cstdint>

namespace intellicache {

/*
 * The reuse of the clusters that guests' misses bring into an unbounded
 * cache: of those that entered lately, how many were read again soon
 * after.  A bounded cache judges reuse with its eviction policy, which
 * tracks every resident cluster; an unbounded one has no policy, so this
 * meter follows a sample instead: one cluster in kSample (by a hash of
 * its index, so a cluster is always or never sampled), the last kTracked
 * sampled clusters that entered, in a ring searched linearly (a 2 KiB
 * scan, for one read in kSample).  Its memory is fixed: no allocation
 * ever.
 *
 * The counts cover about the last kWindow sampled entries (halved when
 * they reach it); reuse is low below one entry read again in kShare,
 * judged once kMinSample entries are counted.  The figures match the
 * bounded policy's (EvictionPolicy): a window of about 4096 clusters,
 * judged from 512.
 */
class ReuseMeter {
public:
    static constexpr std::uint32_t kSample = 16;
    static constexpr std::uint32_t kTracked = 512;
    static constexpr std::uint32_t kWindow = 256;
    static constexpr std::uint32_t kMinSample = 32;
    static constexpr std::uint32_t kShare = 16;

    ReuseMeter() { tracked_.fill(kNone); }

    /* Whether cluster @index is in the sample. */
    static bool sampled(std::uint64_t index);

    /* Cluster @index entered the cache (or was deferred): a guest missed it. */
    void entered(std::uint64_t index);
    /* A guest read reached cluster @index, hit or miss. */
    void read(std::uint64_t index);
    /* Whether few of the clusters that entered lately were read again. */
    bool low() const {
        return entered_ >= kMinSample &&
               std::uint64_t{reused_} * kShare < entered_;
    }

private:
    static constexpr std::uint32_t kNone = UINT32_MAX;

    /* The last kTracked sampled entries not read again yet (or kNone). */
    std::array<std::uint32_t, kTracked> tracked_;
    std::uint32_t next_ = 0; /* the slot the next entry takes */
    std::uint32_t entered_ = 0;
    std::uint32_t reused_ = 0;
};

} // namespace intellicache

#endif
