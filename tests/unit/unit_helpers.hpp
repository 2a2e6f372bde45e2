/*
 * Shared helpers of the core's unit tests.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef UNIT_HELPERS_HPP
#define UNIT_HELPERS_HPP

#include "intellicache-core.h"

#include "ic_core.hpp"
#include "ic_message.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace unit {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;

/*
 * Push the fetch of @seg (planned, not yet done) through the store
 * pipeline as the glue does, with the base read succeeding.  Returns true
 * if it was stored: false if the core did not admit it.
 */
inline bool store_fetch(IcCore *core, const IcSegment &seg) {
    ic_core_fetch_done(core, seg.fetch, true);
    if (!ic_core_store_admit(core, seg.fetch)) {
        return false;
    }
    EXPECT_TRUE(ic_core_store_writer_start(core));
    IcStoreJob job;
    EXPECT_TRUE(ic_core_store_next(core, &job));
    EXPECT_TRUE(job.write);
    ic_core_fetch_stored(core, job.fetch, true);
    EXPECT_FALSE(ic_core_store_next(core, &job));
    return true;
}

/*
 * A user read of [offset, offset + bytes) that misses in one fetch, pushed
 * through the store pipeline.  Returns true if its data was stored.
 */
inline bool read_and_store(IcCore *core, uint64_t offset, uint64_t bytes) {
    IcSegment seg;
    EXPECT_EQ(ic_core_plan(core, offset, bytes, &seg, 1), 1U);
    return seg.kind == IC_SEG_FETCH && store_fetch(core, seg);
}

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

/* A core for @g with the default max-inflight; fails the test if none. */
inline std::unique_ptr<intellicache::Core>
make_core(const IcGeometry &g, uint64_t instance, uint64_t max_fetch_bytes,
          uint32_t max_inflight = IC_DEFAULT_MAX_INFLIGHT) {
    char why[160];
    intellicache::MessageBuffer msg(why, sizeof(why));
    auto core = intellicache::Core::create(g, instance, max_fetch_bytes,
                                           max_inflight, msg);
    EXPECT_NE(core, nullptr) << why;
    return core;
}

/* Runs a fetch through the store queue as the glue does (admit, one writer
 * takes it, writes it); false if it was not admitted. */
inline bool store_via_queue(intellicache::Core &core, IcFetchId id,
                            bool ok = true) {
    if (!core.store_admit(id)) {
        return false;
    }
    EXPECT_TRUE(core.store_writer_start());
    IcStoreJob job{};
    EXPECT_TRUE(core.store_next(job));
    EXPECT_EQ(job.fetch, id);
    EXPECT_TRUE(job.write);
    core.fetch_stored(id, ok);
    EXPECT_FALSE(core.store_next(job)) << "the writer exits";
    return true;
}

} // namespace unit

#endif
