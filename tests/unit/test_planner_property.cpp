/*
 * Unit tests: randomized planning against a simple model of cluster states.
 *
 * Random request streams with random fetch completions and failures; after
 * every step the plan must cover the request exactly (or a prefix when
 * max_segs is reached), never fetch present or in-flight clusters, never
 * let two in-flight fetches overlap, and agree with the model on every
 * cluster's state.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "ic_core.hpp"
#include "unit_helpers.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <vector>

namespace {

using intellicache::Core;

constexpr int kAbsent = 0;
constexpr int kInflight = 1;
constexpr int kPresent = 2;

struct ModelFetch {
    uint64_t first;
    uint64_t count;
    bool done;
    void *opaque;
};

class Model {
public:
    Model(uint64_t seed) : rng_(seed) {
        cs_ = 4096;
        clusters_ = 1 + rng_() % 300;
        base_ = clusters_ * cs_ - rng_() % cs_;
        max_fetch_clusters_ = 1 + rng_() % 8;
        const uint64_t max_fetch_bytes =
            max_fetch_clusters_ * cs_ + rng_() % cs_;
        char why[128];
        EXPECT_TRUE(ic_geometry_init(&g_, base_, cs_, why, sizeof(why)));
        core_ = unit::make_core(g_, rng_(), max_fetch_bytes);
        state_.assign(clusters_, kAbsent);
        owner_.assign(clusters_, 0);
    }

    void run(int steps) {
        for (int i = 0; i < steps && !::testing::Test::HasFailure(); i++) {
            const uint64_t r = rng_() % 10;
            if (r < 5 || fetches_.empty()) {
                plan_step();
            } else {
                complete_step();
            }
            check_states();
        }
    }

private:
    uint64_t byte_end(uint64_t first, uint64_t count) const {
        return std::min((first + count) * cs_, base_);
    }

    void plan_step() {
        const uint64_t off = rng_() % base_;
        uint64_t len = 1 + rng_() % std::min<uint64_t>(base_ - off, 40 * cs_);
        if (rng_() % 4 == 0) {
            len = base_ - off; /* to the very end */
        }
        const size_t max_segs = 1 + rng_() % 8;
        std::vector<IcSegment> segs(max_segs);
        const size_t n = core_->plan(off, len, segs);
        ASSERT_GE(n, 1U);
        ASSERT_LE(n, max_segs);
        segs.resize(n);
        unit::expect_coverage(segs, off, len, n == max_segs);

        for (size_t i = 0; i < n; i++) {
            check_segment(segs, i);
        }
    }

    void check_segment(const std::vector<IcSegment> &segs, size_t i) {
        const IcSegment &s = segs[i];
        const uint64_t c0 = s.offset / cs_;
        const uint64_t c1 = (s.offset + s.bytes - 1) / cs_;
        switch (s.kind) {
        case IC_SEG_HIT:
            ASSERT_EQ(s.cache_offset, g_.data_offset + s.offset);
            for (uint64_t c = c0; c <= c1; c++) {
                ASSERT_EQ(state_[c], kPresent) << "HIT on cluster " << c;
            }
            /* Neighbouring present clusters are one segment. */
            if (i > 0) {
                ASSERT_NE(segs[i - 1].kind, IC_SEG_HIT);
            }
            break;
        case IC_SEG_WAIT: {
            const auto it = fetches_.find(s.fetch);
            ASSERT_NE(it, fetches_.end()) << "WAIT on unknown fetch";
            const ModelFetch &f = it->second;
            ASSERT_EQ(s.fetch_offset, f.first * cs_);
            ASSERT_EQ(s.fetch_bytes,
                      byte_end(f.first, f.count) - f.first * cs_);
            ASSERT_EQ(s.opaque, f.opaque);
            for (uint64_t c = c0; c <= c1; c++) {
                ASSERT_EQ(state_[c], kInflight);
                ASSERT_EQ(owner_[c], s.fetch);
            }
            /* One segment per joined fetch. */
            if (i > 0 && segs[i - 1].kind == IC_SEG_WAIT) {
                ASSERT_NE(segs[i - 1].fetch, s.fetch);
            }
            break;
        }
        case IC_SEG_FETCH: {
            ASSERT_GT(s.fetch, last_id_) << "fetch ids must grow";
            last_id_ = s.fetch;
            ASSERT_EQ(s.fetch_offset % cs_, 0U);
            const uint64_t first = s.fetch_offset / cs_;
            const uint64_t end = s.fetch_offset + s.fetch_bytes;
            ASSERT_LE(end, base_);
            const uint64_t count = (s.fetch_bytes + cs_ - 1) / cs_;
            ASSERT_GE(count, 1U);
            ASSERT_LE(count, max_fetch_clusters_);
            /* Whole clusters, except a last cluster clamped to the base. */
            ASSERT_TRUE(end % cs_ == 0 || end == base_);
            /* The segment is the request's part of the fetch. */
            ASSERT_LE(s.fetch_offset, s.offset);
            ASSERT_LE(s.offset + s.bytes, end);
            ASSERT_TRUE(s.offset == s.fetch_offset || i == 0);
            for (uint64_t c = first; c < first + count; c++) {
                ASSERT_EQ(state_[c], kAbsent)
                    << "FETCH of a present or in-flight cluster " << c;
                state_[c] = kInflight;
                owner_[c] = s.fetch;
            }
            fetches_[s.fetch] = ModelFetch{first, count, false, nullptr};
            /* Consecutive fetches only when the first one is full. */
            if (i > 0 && segs[i - 1].kind == IC_SEG_FETCH) {
                ASSERT_EQ(segs[i - 1].fetch_bytes, max_fetch_clusters_ * cs_);
            }
            break;
        }
        default:
            FAIL() << "bad segment kind";
        }
    }

    void complete_step() {
        auto it = fetches_.begin();
        std::advance(it, static_cast<long>(rng_() % fetches_.size()));
        const IcFetchId id = it->first;
        ModelFetch &f = it->second;
        const uint64_t r = rng_() % 10;
        if (r == 0) {
            f.opaque = reinterpret_cast<void *>(rng_() | 1);
            core_->fetch_set_opaque(id, f.opaque);
        } else if (!f.done) {
            const bool ok = r > 2;
            core_->fetch_done(id, ok);
            if (ok) {
                f.done = true;
            } else {
                set_range(f, kAbsent);
                fetches_.erase(it);
            }
        } else {
            const bool ok = r > 2;
            core_->fetch_stored(id, ok);
            set_range(f, ok ? kPresent : kAbsent);
            fetches_.erase(it);
        }
    }

    void set_range(const ModelFetch &f, int state) {
        for (uint64_t c = f.first; c < f.first + f.count; c++) {
            state_[c] = state;
            owner_[c] = 0;
        }
    }

    void check_states() {
        uint64_t present = 0;
        for (uint64_t c = 0; c < clusters_; c++) {
            ASSERT_EQ(core_->cluster_present(c), state_[c] == kPresent) << c;
            present += state_[c] == kPresent ? 1 : 0;
        }
        const IcStats st = core_->stats();
        ASSERT_EQ(st.cached_clusters, present);
        ASSERT_EQ(st.inflight_fetches, fetches_.size());
    }

    std::mt19937_64 rng_;
    uint32_t cs_;
    uint64_t clusters_;
    uint64_t base_;
    uint64_t max_fetch_clusters_;
    IcGeometry g_{};
    std::unique_ptr<Core> core_;
    std::vector<int> state_;
    std::vector<IcFetchId> owner_;
    std::map<IcFetchId, ModelFetch> fetches_;
    IcFetchId last_id_ = 0;
};

TEST(PlannerProperty, RandomStreamsMatchModel) {
    for (uint64_t seed = 1; seed <= 200; seed++) {
        SCOPED_TRACE(::testing::Message() << "seed " << seed);
        Model m(seed);
        m.run(400);
        if (::testing::Test::HasFailure()) {
            break;
        }
    }
}

} // namespace
