/*
 * intellicache core: boot profiles, their recorder and their file format.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_PROFILE_HPP
#define IC_PROFILE_HPP

#include "intellicache-core.h"

#include "ic_bitmap.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace intellicache {

class MessageBuffer;

/*
 * A profile file, little endian:
 *
 *   [0, 8)      magic "ICPROFIL"
 *   [8, 12)     version (IC_PROFILE_VERSION)
 *   [12, 16)    cluster size of the clusters listed
 *   [16, 24)    base size
 *   [24, 56)    base fingerprint (as in the cache file's header)
 *   [56, 64)    number of entries, N
 *   [64, 64 + 8N)  entries, in the order their clusters were first read:
 *                  u32 cluster index, u32 milliseconds since the start
 *   [64 + 8N, +4)  zlib crc32 of everything before it
 *
 * The base's size and fingerprint tie a profile to one base content:
 * replaying it on another base is refused.  The cluster size is the
 * recording node's; a node with another cluster size replays the same
 * byte ranges.
 */
class ProfileCodec {
public:
    static constexpr std::array<std::uint8_t, 8> kMagic = {'I', 'C', 'P', 'R',
                                                           'O', 'F', 'I', 'L'};

    static std::size_t encoded_size(std::uint64_t entries) {
        return IC_PROFILE_HEADER_SIZE + entries * IC_PROFILE_ENTRY_SIZE + 4;
    }

    /* Writes encoded_size(entries.size()) bytes to @out. */
    static void encode(const IcProfileHeader &h,
                       std::span<const IcProfileEntry> entries,
                       std::uint8_t *out);

    /*
     * Checks @buf (a whole file of @len bytes) and, unless @expected is
     * null, that it belongs to its base (size and fingerprint).  Fills
     * @found once the header is readable, and @entries (resized) when OK.
     */
    static IcProfileStatus decode(const std::uint8_t *buf, std::size_t len,
                                  const IcProfileHeader *expected,
                                  IcProfileHeader &found,
                                  std::vector<IcProfileEntry> *entries,
                                  MessageBuffer &why);
};

/*
 * Records the order in which a node's clusters are first read, and when:
 * one bit per cluster says which were seen, and each first read appends an
 * entry.  At most IC_PROFILE_MAX_ENTRIES entries are kept; clusters first
 * read after that are counted as dropped, once each (a boot reads far
 * fewer clusters).
 */
class ProfileRecorder {
public:
    ProfileRecorder(const IcGeometry &g, const std::uint8_t *fingerprint,
                    std::uint64_t start_ms);

    /* A read of [offset, offset + bytes) of the base at @now_ms. */
    void note(std::uint64_t offset, std::uint64_t bytes, std::uint64_t now_ms);

    std::size_t entries() const { return entries_.size(); }
    std::uint64_t dropped() const { return dropped_; }
    std::size_t encoded_size() const {
        return ProfileCodec::encoded_size(entries_.size());
    }
    void encode(std::uint8_t *out) const;

private:
    IcProfileHeader header_{};
    std::uint64_t start_ms_;
    ClusterBitmap seen_;
    std::vector<IcProfileEntry> entries_;
    std::uint64_t dropped_ = 0;
};

} // namespace intellicache

#endif
