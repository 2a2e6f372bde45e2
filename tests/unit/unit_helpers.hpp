/*
 * Shared helpers of the core's unit tests.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef UNIT_HELPERS_HPP
#define UNIT_HELPERS_HPP

#include "intellicache-core.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace unit {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;

/* Checks that @segs are contiguous, in order, start at @offset and cover
 * exactly @bytes (or, with @prefix, at most @bytes). */
inline void expect_coverage(const std::vector<IcSegment> &segs, uint64_t offset,
                            uint64_t bytes, bool prefix = false) {
    uint64_t pos = offset;
    for (const IcSegment &s : segs) {
        EXPECT_EQ(s.offset, pos) << "segments must be contiguous";
        EXPECT_GT(s.bytes, 0U) << "empty segment";
        pos = s.offset + s.bytes;
    }
    if (prefix) {
        EXPECT_LE(pos, offset + bytes);
    } else {
        EXPECT_EQ(pos, offset + bytes) << "request not fully covered";
    }
}

} // namespace unit

#endif
