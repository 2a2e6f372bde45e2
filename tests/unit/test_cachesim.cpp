/*
 * Unit tests: ic-cachesim's workloads and reference policies (tools/), so
 * that its comparisons of the eviction policy can be trusted.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "cachesim_replay.hpp"
#include "cachesim_workload.hpp"

#include "ic_eviction.hpp"
#include "ic_message.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

using namespace cachesim;

constexpr uint64_t kCs = 4096;

/* One read of one cluster per letter-like id. */
Workload reads_of(const std::vector<uint64_t> &clusters) {
    Workload w;
    for (const uint64_t c : clusters) {
        w.requests.push_back({c * kCs, kCs});
    }
    w.base_size = 64 * kCs;
    w.measured_from = w.requests.size();
    return w;
}

std::unique_ptr<SimCache> s3fifo(const Replay &r, uint64_t capacity,
                                 bool repeat_touch = true) {
    char why[100];
    intellicache::MessageBuffer msg(why, sizeof(why));
    auto p =
        intellicache::EvictionPolicy::create(r.cluster_count, capacity, msg);
    EXPECT_NE(p, nullptr) << why;
    return make_s3fifo(r, std::move(p), repeat_touch);
}

uint64_t misses(const Replay &r, SimCache &cache) {
    const PolicyResult res = replay("x", cache, r, r.request_end.size());
    return res.all.requests - res.all.request_hits;
}

/* The textbook reference string (Silberschatz et al., Operating System
 * Concepts) with 3 frames: FIFO 15 faults, LRU 12, OPT 9; OPT that may
 * leave a page out of memory (read it without keeping it) does better. */
TEST(CacheSim, TextbookPageFaults) {
    const Workload w =
        reads_of({7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1});
    const Replay r = flatten(w, kCs);
    EXPECT_EQ(misses(r, *make_fifo(r, 3)), 15U);
    EXPECT_EQ(misses(r, *make_lru(r, 3)), 12U);
    EXPECT_EQ(misses(r, *make_min(r, 3, true)), 9U);
    EXPECT_LT(misses(r, *make_min(r, 3)), 9U);
}

TEST(CacheSim, SieveKeepsAVisitedEntryWhereLruDropsIt) {
    /* A B C A D E F A, 3 entries.  SIEVE: D's eviction clears A's bit and
     * evicts B, then E and F evict C and D (the hand moves on, newer), so
     * A is still there.  LRU evicts A for F. */
    const Workload w = reads_of({0, 1, 2, 0, 3, 4, 5, 0});
    const Replay r = flatten(w, kCs);
    EXPECT_EQ(misses(r, *make_sieve(r, 3)), 6U);
    EXPECT_EQ(misses(r, *make_lru(r, 3)), 7U);
    EXPECT_EQ(misses(r, *make_fifo(r, 3)), 7U);
    EXPECT_EQ(misses(r, *make_min(r, 3)), 6U);
}

TEST(CacheSim, SieveHandWrapsToTheTail) {
    /* A B C, then A B C read again (all visited), then D: the hand clears
     * A, B and C, wraps to the tail and evicts A. */
    const Workload w = reads_of({0, 1, 2, 0, 1, 2, 3, 1, 2, 0});
    const Replay r = flatten(w, kCs);
    EXPECT_EQ(misses(r, *make_sieve(r, 3)), 5U); /* A B C D, then A */
}

TEST(CacheSim, MinIsNeverWorse) {
    Rng rng(5);
    std::vector<uint64_t> clusters;
    for (int i = 0; i < 5000; i++) {
        clusters.push_back(rng.below(2) == 0 ? rng.below(8) : rng.below(60));
    }
    const Workload w = reads_of(clusters);
    const Replay r = flatten(w, kCs);
    for (const uint64_t cap : {1, 4, 16, 40}) {
        const uint64_t min = misses(r, *make_min(r, cap));
        EXPECT_LE(min, misses(r, *make_lru(r, cap))) << cap;
        EXPECT_LE(min, misses(r, *make_fifo(r, cap))) << cap;
        EXPECT_LE(min, misses(r, *make_sieve(r, cap))) << cap;
        EXPECT_LE(min, misses(r, *s3fifo(r, cap))) << cap;
    }
}

TEST(CacheSim, RepeatTouch) {
    /* 0 read twice in a row, then 10 other clusters through a cache of
     * 10, then 0 again.  Touched, the second read moves 0 to main and it
     * stays; not touched (a read continuing in the cluster), 0 leaves
     * with the others read once. */
    const Workload w = reads_of({0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0});
    const Replay r = flatten(w, kCs);
    EXPECT_EQ(misses(r, *s3fifo(r, 10, true)), 11U);
    EXPECT_EQ(misses(r, *s3fifo(r, 10, false)), 12U);
    /* Not consecutive: counted either way. */
    const Workload v = reads_of({0, 1, 0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0});
    const Replay q = flatten(v, kCs);
    EXPECT_EQ(misses(q, *s3fifo(q, 10, false)), 11U);
}

TEST(CacheSim, RequestsAreCutAtClusters) {
    Workload w;
    w.requests = {{6 * 1024, 8 * 1024}, {0, 4096}, {8 * 1024, 100}};
    w.base_size = 16 * 1024;
    const Replay r = flatten(w, kCs);
    EXPECT_EQ(r.cluster_count, 4U);
    EXPECT_EQ(r.cluster, (std::vector<uint32_t>{1, 2, 3, 0, 2}));
    EXPECT_EQ(r.dense, (std::vector<uint32_t>{0, 1, 2, 3, 1}));
    EXPECT_EQ(r.bytes, (std::vector<uint32_t>{2048, 4096, 2048, 4096, 100}));
    EXPECT_EQ(r.request_end, (std::vector<size_t>{3, 4, 5}));
    EXPECT_EQ(r.distinct, 4U);
}

TEST(CacheSim, RequestHitOnlyIfEveryClusterHits) {
    Workload w;
    w.requests = {{0, 8192}, {4096, 8192}, {0, 8192}};
    w.base_size = 16 * 1024;
    w.measured_from = 1;
    const Replay r = flatten(w, kCs);
    const PolicyResult res = replay("LRU", *make_lru(r, 10), r, 1);
    EXPECT_EQ(res.all.requests, 3U);
    EXPECT_EQ(res.all.request_hits, 1U);
    EXPECT_EQ(res.all.bytes, 3U * 8192);
    EXPECT_EQ(res.all.hit_bytes, 4096U + 8192);
    EXPECT_EQ(res.measured.requests, 2U);
    EXPECT_DOUBLE_EQ(res.measured.byte_ratio(), 0.75);
    EXPECT_DOUBLE_EQ(res.measured.request_ratio(), 0.5);
}

TEST(CacheSim, ZipfIsSeededAndSkewed) {
    const Workload a = zipf_workload(1.0, 1024 * kCs, kCs, 100000, 7);
    const Workload b = zipf_workload(1.0, 1024 * kCs, kCs, 100000, 7);
    const Workload c = zipf_workload(1.0, 1024 * kCs, kCs, 100000, 8);
    ASSERT_EQ(a.requests.size(), 100000U);
    bool same = true;
    bool differs = false;
    std::map<uint64_t, unsigned> count;
    for (size_t i = 0; i < a.requests.size(); i++) {
        same = same && a.requests[i].offset == b.requests[i].offset;
        differs = differs || a.requests[i].offset != c.requests[i].offset;
        EXPECT_EQ(a.requests[i].bytes, 4096U);
        EXPECT_EQ(a.requests[i].offset % kCs, 0U);
        EXPECT_LT(a.requests[i].offset, 1024 * kCs);
        count[a.requests[i].offset]++;
    }
    EXPECT_TRUE(same) << "the same seed gives the same reads";
    EXPECT_TRUE(differs) << "another seed gives other reads";
    /* Rank 1 takes 1 / H(1024) = 13.3% of the reads, rank 2 half that. */
    std::vector<unsigned> top;
    for (const auto &[offset, n] : count) {
        top.push_back(n);
    }
    std::sort(top.rbegin(), top.rend());
    EXPECT_NEAR(top[0] / 100000.0, 0.133, 0.01);
    EXPECT_NEAR(top[1] / 100000.0, 0.0665, 0.01);
    /* The most read cluster is not simply cluster 0: ranks are placed. */
    EXPECT_NE(count[0], top[0]);
}

TEST(CacheSim, ZipfReadsAre4KiBInsideLargerClusters) {
    const Workload w = zipf_workload(0.9, 64 * 65536, 65536, 1000, 1);
    std::set<uint64_t> blocks;
    for (const Request &q : w.requests) {
        EXPECT_EQ(q.bytes, 4096U);
        EXPECT_EQ(q.offset % 4096, 0U);
        blocks.insert(q.offset % 65536);
    }
    EXPECT_GT(blocks.size(), 8U) << "reads spread over the cluster";
}

TEST(CacheSim, ScanWorkloadShape) {
    const uint64_t base = 64 * kMiB;
    const Workload w = scan_workload({base, 4 * kMiB, kMiB, 0, 3});
    const size_t boot = 4 * kMiB / kBootExtent;
    ASSERT_EQ(w.requests.size(), 3 * boot + 64);
    EXPECT_EQ(w.measured_from, 2 * boot + 64);
    std::set<uint64_t> extents;
    for (size_t i = 0; i < boot; i++) {
        const Request &q = w.requests[i];
        EXPECT_EQ(q.bytes, kBootExtent);
        EXPECT_LT(q.offset, base / 4) << "in the first quarter";
        extents.insert(q.offset);
        /* The same order in all three passes. */
        EXPECT_EQ(w.requests[boot + i].offset, q.offset);
        EXPECT_EQ(w.requests[w.measured_from + i].offset, q.offset);
    }
    EXPECT_EQ(extents.size(), boot) << "distinct extents";
    for (size_t i = 0; i < 64; i++) {
        EXPECT_EQ(w.requests[2 * boot + i].offset, i * kMiB);
        EXPECT_EQ(w.requests[2 * boot + i].bytes, kMiB);
    }
    const Workload hot = scan_workload({base, 4 * kMiB, kMiB, kMiB, 3});
    EXPECT_EQ(hot.requests.size(), 3 * boot + 64 * (1 + kHotReads));
}

TEST(CacheSim, ScanResistanceOfTheCorePolicy) {
    const Workload w = scan_workload({256 * kMiB, 16 * kMiB, kMiB, 0, 1});
    const Replay r = flatten(w, kCs);
    const uint64_t cap = 32 * kMiB / kCs;
    const PolicyResult s3 =
        replay("S3-FIFO", *s3fifo(r, cap), r, w.measured_from);
    const PolicyResult lru =
        replay("LRU", *make_lru(r, cap), r, w.measured_from);
    EXPECT_GE(s3.measured.byte_ratio(), 0.9);
    EXPECT_LT(lru.measured.byte_ratio(), 0.1);
}

TEST(CacheSim, Sizes) {
    EXPECT_EQ(parse_size("4096"), 4096U);
    EXPECT_EQ(parse_size("4K"), 4096U);
    EXPECT_EQ(parse_size("64KiB"), 65536U);
    EXPECT_EQ(parse_size("512M"), 512U << 20);
    EXPECT_EQ(parse_size("4G"), uint64_t{4} << 30);
    EXPECT_EQ(parse_size("1T"), uint64_t{1} << 40);
    EXPECT_EQ(parse_size("2MB"), 2U << 20);
    EXPECT_EQ(parse_size(""), std::nullopt);
    EXPECT_EQ(parse_size("-1"), std::nullopt);
    EXPECT_EQ(parse_size("4X"), std::nullopt);
    EXPECT_EQ(parse_size("G"), std::nullopt);
    EXPECT_EQ(parse_size("99999999999T"), std::nullopt);
    EXPECT_EQ(describe_size(uint64_t{4} << 30), "4 GiB");
    EXPECT_EQ(describe_size(512U << 20), "512 MiB");
    EXPECT_EQ(describe_size(4096), "4 KiB");
    EXPECT_EQ(describe_size(100), "100 bytes");
}

class TraceFile : public ::testing::Test {
protected:
    void TearDown() override { std::remove(path_.c_str()); }

    bool load(const std::string &text, Workload &w, std::string &error,
              const std::string &format = "auto") {
        std::ofstream(path_) << text;
        return load_trace(path_, format, w, error);
    }

    std::string path_ =
        ::testing::TempDir() + "cachesim-" + std::to_string(getpid());
};

TEST_F(TraceFile, FioIologVersion2) {
    Workload w;
    std::string error;
    ASSERT_TRUE(load("fio version 2 iolog\n"
                     "/dev/vdb add\n"
                     "/dev/vdb open\n"
                     "/dev/vdb read 8192 4096\n"
                     "/dev/vdb write 0 4096\n"
                     "/dev/vdb read 1048576 131072\n"
                     "/dev/vdb close\n",
                     w, error))
        << error;
    ASSERT_EQ(w.requests.size(), 2U);
    EXPECT_EQ(w.requests[0].offset, 8192U);
    EXPECT_EQ(w.requests[0].bytes, 4096U);
    EXPECT_EQ(w.requests[1].offset, 1048576U);
    EXPECT_EQ(w.requests[1].bytes, 131072U);
    EXPECT_EQ(w.base_size, 1048576U + 131072U);
    EXPECT_NE(w.description.find("4 other entries ignored"), std::string::npos)
        << w.description;
}

TEST_F(TraceFile, FioIologVersion3) {
    Workload w;
    std::string error;
    ASSERT_TRUE(load("fio version 3 iolog\n"
                     "0 /dev/vdb add\n"
                     "12 /dev/vdb open\n"
                     "40 /dev/vdb read 4096 512\n",
                     w, error))
        << error;
    ASSERT_EQ(w.requests.size(), 1U);
    EXPECT_EQ(w.requests[0].offset, 4096U);
    EXPECT_EQ(w.requests[0].bytes, 512U);
}

TEST_F(TraceFile, OffsetLength) {
    Workload w;
    std::string error;
    ASSERT_TRUE(load("# a comment\n0 4096\n\n0x2000 8192 # inline\n", w, error))
        << error;
    ASSERT_EQ(w.requests.size(), 2U);
    EXPECT_EQ(w.requests[1].offset, 0x2000U);
    EXPECT_EQ(w.requests[1].bytes, 8192U);
}

TEST_F(TraceFile, Errors) {
    Workload w;
    std::string error;
    EXPECT_FALSE(load("0 4096\n12\n", w, error));
    EXPECT_NE(error.find(":2: expected"), std::string::npos) << error;
    EXPECT_FALSE(
        load("fio version 2 iolog\na read 0 1\nb read 0 1\n", w, error));
    EXPECT_NE(error.find("reads of a and of b"), std::string::npos) << error;
    EXPECT_FALSE(load("fio version 9 iolog\n", w, error));
    EXPECT_FALSE(load("0 4096\n", w, error, "fio"));
    EXPECT_FALSE(load("fio version 2 iolog\na read x 1\n", w, error));
    EXPECT_FALSE(load_trace("/nonexistent/trace", "auto", w, error));
    EXPECT_NE(error.find("cannot open"), std::string::npos) << error;
}

} // namespace
