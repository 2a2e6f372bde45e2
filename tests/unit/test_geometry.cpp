/*
 * Unit tests: cache file layout (ic_geometry_init / Geometry).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "ic_geometry.hpp"
#include "ic_message.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace {

constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint32_t k64K = 64 * 1024;

IcGeometry layout(uint64_t base, uint32_t cs) {
    IcGeometry g{};
    char why[256] = "";
    EXPECT_TRUE(ic_geometry_init(&g, base, cs, why, sizeof(why))) << why;
    return g;
}

std::string rejection(uint64_t base, uint32_t cs) {
    IcGeometry g{};
    char why[256] = "unset";
    EXPECT_FALSE(ic_geometry_init(&g, base, cs, why, sizeof(why)));
    return why;
}

TEST(Geometry, OneByteBase) {
    const IcGeometry g = layout(1, k64K);
    EXPECT_EQ(g.base_size, 1U);
    EXPECT_EQ(g.cluster_size, k64K);
    EXPECT_EQ(g.cluster_count, 1U);
    EXPECT_EQ(g.meta_offset, 4096U);
    EXPECT_EQ(g.meta_blocks, 1U);
    EXPECT_EQ(g.data_offset, kMiB);
    /* The partial last cluster still takes a whole slot. */
    EXPECT_EQ(g.file_size, kMiB + k64K);
}

TEST(Geometry, ClusterSizeMinusOne) {
    const IcGeometry g = layout(k64K - 1, k64K);
    EXPECT_EQ(g.cluster_count, 1U);
    EXPECT_EQ(g.file_size, kMiB + k64K);
}

TEST(Geometry, ExactlyOneCluster) {
    const IcGeometry g = layout(k64K, k64K);
    EXPECT_EQ(g.cluster_count, 1U);
    EXPECT_EQ(g.file_size, kMiB + k64K);
}

TEST(Geometry, ClusterSizePlusOne) {
    const IcGeometry g = layout(k64K + 1, k64K);
    EXPECT_EQ(g.cluster_count, 2U);
    EXPECT_EQ(g.meta_blocks, 1U);
    EXPECT_EQ(g.file_size, kMiB + 2 * k64K);
}

TEST(Geometry, OneTiB) {
    const uint64_t tib = 1024 * 1024 * kMiB;
    const IcGeometry g = layout(tib, k64K);
    EXPECT_EQ(g.cluster_count, tib / k64K); /* 16 Mi clusters */
    const uint64_t blocks =
        (g.cluster_count + IC_META_BLOCK_CLUSTERS - 1) / IC_META_BLOCK_CLUSTERS;
    EXPECT_EQ(g.meta_blocks, blocks);
    EXPECT_EQ(g.meta_blocks, 515U);
    /* 4096 + 515 * 4096 bytes of metadata, rounded up to 1 MiB: 3 MiB. */
    EXPECT_EQ(g.data_offset, 3 * kMiB);
    EXPECT_EQ(g.file_size, 3 * kMiB + tib);
}

TEST(Geometry, MetaBlockBoundary) {
    /* Exactly one block's worth of clusters, then one more. */
    const uint64_t n = IC_META_BLOCK_CLUSTERS;
    EXPECT_EQ(layout(n * 4096, 4096).meta_blocks, 1U);
    EXPECT_EQ(layout(n * 4096 + 1, 4096).meta_blocks, 2U);
    EXPECT_EQ(layout(n * 4096 + 1, 4096).cluster_count, n + 1);
}

TEST(Geometry, BigClustersAlignDataToClusterSize) {
    const IcGeometry g = layout(10 * kMiB, IC_MAX_CLUSTER_SIZE);
    EXPECT_EQ(g.data_offset, uint64_t{IC_MAX_CLUSTER_SIZE});
    EXPECT_EQ(g.cluster_count, 5U);
    EXPECT_EQ(g.file_size, 2 * kMiB + 10 * kMiB);
}

TEST(Geometry, SmallestClusters) {
    const IcGeometry g = layout(3 * 4096 + 5, IC_MIN_CLUSTER_SIZE);
    EXPECT_EQ(g.cluster_count, 4U);
    EXPECT_EQ(g.data_offset, kMiB);
    EXPECT_EQ(g.file_size, kMiB + 4 * 4096);
}

TEST(Geometry, LargestBase) {
    const IcGeometry g = layout(IC_MAX_BASE_SIZE, IC_MAX_CLUSTER_SIZE);
    EXPECT_EQ(g.cluster_count, IC_MAX_CLUSTER_COUNT);
    EXPECT_GT(g.file_size, IC_MAX_BASE_SIZE);
    EXPECT_LT(g.file_size, uint64_t{INT64_MAX});
}

/* A bitmap of 2^40 clusters would not fit in memory: refused, not a crash. */
TEST(Geometry, RejectsTooManyClusters) {
    const IcGeometry g = layout(IC_MAX_CLUSTER_COUNT * 4096, 4096);
    EXPECT_EQ(g.cluster_count, IC_MAX_CLUSTER_COUNT);
    EXPECT_EQ(rejection(IC_MAX_CLUSTER_COUNT * 4096 + 1, 4096),
              "cluster-size 4096 gives 4294967297 clusters for a base of "
              "17592186044417 bytes, more than the maximum of 4294967296; "
              "use a larger cluster-size");
    EXPECT_NE(rejection(IC_MAX_BASE_SIZE, k64K).find("4294967296"),
              std::string::npos);
}

TEST(Geometry, DefaultClusterSize) {
    constexpr uint64_t kGiB = 1024 * kMiB;
    EXPECT_EQ(ic_default_cluster_size(1), 4096U);
    EXPECT_EQ(ic_default_cluster_size(256 * kGiB), 4096U);
    EXPECT_EQ(ic_default_cluster_size(256 * kGiB + 1), 8192U);
    EXPECT_EQ(ic_default_cluster_size(1024 * kGiB), 16384U);
    EXPECT_EQ(ic_default_cluster_size(4096 * kGiB), k64K);
    EXPECT_EQ(ic_default_cluster_size(IC_MAX_BASE_SIZE), IC_MAX_CLUSTER_SIZE);
    /* The default always gives a valid layout with a bitmap <= 8 MiB, up
     * to 128 TiB. */
    for (uint64_t base = kMiB; base <= (uint64_t{1} << 47); base *= 3) {
        const uint32_t cs = ic_default_cluster_size(base);
        const IcGeometry g = layout(base, cs);
        EXPECT_LE(g.cluster_count, IC_DEFAULT_MAX_CLUSTERS) << base;
    }
}

TEST(Geometry, RejectsNonPowerOfTwo) {
    EXPECT_EQ(rejection(kMiB, 3000), "cluster-size 3000 is not a power of two");
    EXPECT_EQ(rejection(kMiB, 5000), "cluster-size 5000 is not a power of two");
    EXPECT_EQ(rejection(kMiB, 65536 + 4096),
              "cluster-size 69632 is not a power of two");
}

TEST(Geometry, RejectsOutOfRange) {
    EXPECT_EQ(rejection(kMiB, 1024),
              "cluster-size 1024 is out of range [4096, 2097152]");
    EXPECT_EQ(rejection(kMiB, 0),
              "cluster-size 0 is out of range [4096, 2097152]");
    EXPECT_EQ(rejection(kMiB, 4 * 1024 * 1024),
              "cluster-size 4194304 is out of range [4096, 2097152]");
    EXPECT_EQ(rejection(kMiB, 2048),
              "cluster-size 2048 is out of range [4096, 2097152]");
}

TEST(Geometry, RejectsBadBaseSizes) {
    EXPECT_NE(rejection(0, k64K).find("base size 0"), std::string::npos);
    const std::string msg = rejection(IC_MAX_BASE_SIZE + 1, k64K);
    EXPECT_NE(msg.find("9007199254740993"), std::string::npos) << msg;
    EXPECT_NE(msg.find("9007199254740992"), std::string::npos) << msg;
}

TEST(Geometry, MessageTruncatedAndTerminated) {
    IcGeometry g{};
    char why[8];
    std::memset(why, 'x', sizeof(why));
    EXPECT_FALSE(ic_geometry_init(&g, kMiB, 3000, why, sizeof(why)));
    EXPECT_EQ(std::string(why), "cluster");
    EXPECT_EQ(why[7], '\0');
    /* A NULL message buffer is fine. */
    EXPECT_FALSE(ic_geometry_init(&g, kMiB, 3000, nullptr, 0));
    EXPECT_FALSE(ic_geometry_init(&g, kMiB, 3000, nullptr, 100));
    /* A one-byte buffer gets just the terminator. */
    char one = 'x';
    EXPECT_FALSE(ic_geometry_init(&g, kMiB, 3000, &one, 1));
    EXPECT_EQ(one, '\0');
}

TEST(Geometry, AdoptAcceptsOnlyComputedLayouts) {
    const IcGeometry g = layout(5 * kMiB + 3, k64K);
    EXPECT_TRUE(intellicache::Geometry::adopt(g).has_value());
    IcGeometry bad = g;
    bad.data_offset += 4096;
    EXPECT_FALSE(intellicache::Geometry::adopt(bad).has_value());
    bad = g;
    bad.file_size -= 1;
    EXPECT_FALSE(intellicache::Geometry::adopt(bad).has_value());
    bad = g;
    bad.cluster_size = 3000;
    EXPECT_FALSE(intellicache::Geometry::adopt(bad).has_value());
}

TEST(Geometry, ClusterArithmetic) {
    intellicache::MessageBuffer none(nullptr, 0);
    const auto g = intellicache::Geometry::compute(k64K * 3 + 10, k64K, none);
    ASSERT_TRUE(g.has_value());
    EXPECT_EQ(g->cluster_of(0), 0U);
    EXPECT_EQ(g->cluster_of(k64K - 1), 0U);
    EXPECT_EQ(g->cluster_of(k64K), 1U);
    EXPECT_EQ(g->cluster_start(3), 3U * k64K);
    EXPECT_EQ(g->clusters_end(2), 2U * k64K);
    EXPECT_EQ(g->clusters_end(4), 3U * k64K + 10); /* clamped to the base */
}

} // namespace
