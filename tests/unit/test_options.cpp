/*
 * Unit tests: the node's options (Options, ic_options_check,
 * ic_settings_resolve).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include <gtest/gtest.h>

#include <string>

namespace {

constexpr uint64_t kMiB = 1024 * 1024;

struct Result {
    bool ok;
    IcSettings set;
    std::string why;
};

Result check(const IcOptions &opts) {
    Result r{};
    char why[256];
    r.set.max_fetch = 12345; /* must be overwritten */
    r.ok = ic_options_check(&opts, &r.set, why, sizeof(why));
    r.why = why;
    return r;
}

Result resolve(const IcOptions &opts, uint32_t cluster_size) {
    Result r{};
    char why[256];
    r.ok = ic_settings_resolve(&opts, &r.set, cluster_size, why, sizeof(why));
    r.why = why;
    return r;
}

IcOptions cluster(uint64_t v) {
    IcOptions o{};
    o.has_cluster_size = true;
    o.cluster_size = v;
    return o;
}
IcOptions inflight(uint64_t v) {
    IcOptions o{};
    o.has_max_inflight = true;
    o.max_inflight = v;
    return o;
}
IcOptions fetch(uint64_t v) {
    IcOptions o{};
    o.has_max_fetch = true;
    o.max_fetch = v;
    return o;
}
IcOptions ahead(uint64_t v) {
    IcOptions o{};
    o.has_read_ahead = true;
    o.read_ahead = v;
    return o;
}

IcOptions miss_timeout(uint64_t v) {
    IcOptions o{};
    o.has_miss_timeout = true;
    o.miss_timeout = v;
    return o;
}

TEST(Options, MissTimeoutRangeAndDefault) {
    EXPECT_EQ(check(IcOptions{}).set.miss_timeout_ms,
              IC_DEFAULT_MISS_TIMEOUT * 1000ULL);
    EXPECT_EQ(check(miss_timeout(0)).set.miss_timeout_ms, 0U)
        << "0: misses fail at once";
    EXPECT_EQ(check(miss_timeout(60)).set.miss_timeout_ms, 60000U);
    EXPECT_EQ(check(miss_timeout(3600)).set.miss_timeout_ms, 3600000U);
    EXPECT_EQ(check(miss_timeout(3601)).why,
              "miss-timeout must be from 0 to 3600 seconds, not 3601");
    EXPECT_FALSE(check(miss_timeout(UINT64_MAX)).ok) << "no overflow";
    /* resolve() keeps it. */
    EXPECT_EQ(resolve(miss_timeout(7), 4096).set.miss_timeout_ms, 7000U);
}

TEST(Options, NothingGivenGivesTheDefaults) {
    const Result c = check(IcOptions{});
    ASSERT_TRUE(c.ok);
    EXPECT_EQ(c.why, "");
    EXPECT_EQ(c.set.cluster_size, 0U) << "unknown until the cache is seen";
    EXPECT_EQ(c.set.max_inflight, IC_DEFAULT_MAX_INFLIGHT);
    EXPECT_EQ(c.set.max_fetch, 0U) << "depends on the cluster size";
    EXPECT_EQ(c.set.read_ahead, 0U);

    const Result r = resolve(IcOptions{}, 4096);
    ASSERT_TRUE(r.ok) << r.why;
    EXPECT_EQ(r.set.cluster_size, 4096U);
    EXPECT_EQ(r.set.max_inflight, IC_DEFAULT_MAX_INFLIGHT);
    EXPECT_EQ(r.set.max_fetch, IC_DEFAULT_MAX_FETCH);
    EXPECT_EQ(r.set.read_ahead, 2U * IC_DEFAULT_MAX_FETCH);
}

TEST(Options, DefaultMaxFetchIsAtLeastOneCluster) {
    /* 2 MiB clusters: one cluster, larger than the 1 MiB default. */
    const Result r = resolve(IcOptions{}, IC_MAX_CLUSTER_SIZE);
    ASSERT_TRUE(r.ok) << r.why;
    EXPECT_EQ(r.set.max_fetch, uint64_t{IC_MAX_CLUSTER_SIZE});
    EXPECT_EQ(r.set.read_ahead, 2U * IC_MAX_CLUSTER_SIZE);
    /* 1 MiB clusters: exactly the default. */
    EXPECT_EQ(resolve(IcOptions{}, 1024 * 1024).set.max_fetch, kMiB);
}

TEST(Options, ClusterSizeMustBeAPowerOfTwoInRange) {
    for (const uint64_t bad :
         {uint64_t{0}, uint64_t{1}, uint64_t{2048}, uint64_t{3000},
          uint64_t{4097}, uint64_t{12288}, uint64_t{4} * kMiB,
          uint64_t{1} << 40, UINT64_MAX}) {
        const Result r = check(cluster(bad));
        EXPECT_FALSE(r.ok) << bad;
        EXPECT_EQ(r.why, "cluster-size must be a power of two from 4096 to "
                         "2097152, not " +
                             std::to_string(bad));
    }
    for (uint64_t good = 4096; good <= IC_MAX_CLUSTER_SIZE; good *= 2) {
        const Result r = check(cluster(good));
        ASSERT_TRUE(r.ok) << good << ": " << r.why;
        EXPECT_EQ(r.set.cluster_size, good);
    }
}

TEST(Options, MaxInflightRange) {
    EXPECT_EQ(check(inflight(0)).why,
              "max-inflight must be from 1 to 1024, not 0");
    EXPECT_EQ(check(inflight(1025)).why,
              "max-inflight must be from 1 to 1024, not 1025");
    EXPECT_FALSE(check(inflight(UINT64_MAX)).ok);
    EXPECT_FALSE(check(inflight(uint64_t{1} << 32)).ok)
        << "must not be truncated to 32 bits first";
    EXPECT_EQ(check(inflight(1)).set.max_inflight, 1U);
    EXPECT_EQ(check(inflight(1024)).set.max_inflight, 1024U);
}

TEST(Options, MaxFetchRange) {
    EXPECT_EQ(check(fetch(IC_MAX_FETCH_LIMIT + uint64_t{4096})).why,
              "max-fetch must be a multiple of the cluster size from one "
              "cluster to 67108864, not 67112960");
    const Result limit = check(fetch(IC_MAX_FETCH_LIMIT));
    ASSERT_TRUE(limit.ok);
    EXPECT_EQ(limit.set.max_fetch, uint64_t{IC_MAX_FETCH_LIMIT});
    EXPECT_EQ(limit.set.read_ahead, 0U) << "not resolved yet";
}

/* A given 0 used to mean "the default" by accident of the option parser:
 * it is refused now, with a message. */
TEST(Options, MaxFetchZeroIsRefused) {
    const Result r = check(fetch(0));
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.why, "max-fetch must be a multiple of the cluster size from "
                     "one cluster to 67108864, not 0");
    EXPECT_FALSE(resolve(fetch(0), 4096).ok);
}

TEST(Options, MaxFetchMustBeAMultipleOfTheCluster) {
    const Result r = resolve(fetch(12288), 8192);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.why, "max-fetch 12288 is not a multiple of the cluster size "
                     "8192");
    /* Smaller than one cluster: not a multiple either. */
    EXPECT_FALSE(resolve(fetch(4096), 65536).ok);
    const Result ok = resolve(fetch(3 * 8192), 8192);
    ASSERT_TRUE(ok.ok) << ok.why;
    EXPECT_EQ(ok.set.max_fetch, 3U * 8192);
    EXPECT_EQ(ok.set.read_ahead, 6U * 8192) << "two max-fetch";
}

TEST(Options, ReadAheadRange) {
    EXPECT_EQ(check(ahead(IC_MAX_READ_AHEAD + uint64_t{1})).why,
              "read-ahead must be at most 268435456, not 268435457");
    const Result zero = resolve(ahead(0), 4096);
    ASSERT_TRUE(zero.ok);
    EXPECT_EQ(zero.set.read_ahead, 0U) << "0 disables, no default";
    const Result max = resolve(ahead(IC_MAX_READ_AHEAD), 4096);
    ASSERT_TRUE(max.ok);
    EXPECT_EQ(max.set.read_ahead, uint64_t{IC_MAX_READ_AHEAD});
}

TEST(Options, FetchMemoryIsBounded) {
    IcOptions o = inflight(1024);
    o.has_max_fetch = true;
    o.max_fetch = kMiB;
    ASSERT_TRUE(check(o).ok) << "each option is fine on its own";
    const Result at = resolve(o, 4096); /* exactly 1 GiB */
    ASSERT_TRUE(at.ok) << at.why;

    o.max_fetch = 2 * kMiB;
    const Result over = resolve(o, 4096);
    EXPECT_FALSE(over.ok);
    EXPECT_EQ(over.why, "max-inflight x max-fetch = 1024 x 2097152 = "
                        "2147483648 exceeds 1073741824 bytes of fetch "
                        "buffers: lower max-inflight or max-fetch");

    /* The default max-fetch counts too: one 2 MiB cluster. */
    const Result dflt = resolve(inflight(1024), IC_MAX_CLUSTER_SIZE);
    EXPECT_FALSE(dflt.ok);
    EXPECT_NE(dflt.why.find("1024 x 2097152"), std::string::npos) << dflt.why;
    EXPECT_TRUE(resolve(inflight(512), IC_MAX_CLUSTER_SIZE).ok);
}

TEST(Options, ResolveRejectsWhatCheckRejects) {
    const Result r = resolve(inflight(0), 4096);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.why, "max-inflight must be from 1 to 1024, not 0");
}

TEST(Options, ResolveRejectsAnInvalidClusterSize) {
    const Result r = resolve(IcOptions{}, 3000);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.why, "cluster size 3000 is not a power of two from 4096 to "
                     "2097152");
    EXPECT_FALSE(resolve(IcOptions{}, 0).ok);
}

TEST(Options, ResolveAgainForAnotherClusterSize) {
    IcSettings set{};
    const IcOptions none{};
    char why[128];
    /* First for 4 KiB, then for an existing cache's 2 MiB clusters: the
     * defaults follow, nothing of the first resolution sticks. */
    ASSERT_TRUE(ic_settings_resolve(&none, &set, 4096, why, sizeof(why)));
    EXPECT_EQ(set.max_fetch, kMiB);
    ASSERT_TRUE(ic_settings_resolve(&none, &set, IC_MAX_CLUSTER_SIZE, why,
                                    sizeof(why)));
    EXPECT_EQ(set.cluster_size, IC_MAX_CLUSTER_SIZE);
    EXPECT_EQ(set.max_fetch, uint64_t{IC_MAX_CLUSTER_SIZE});
    EXPECT_EQ(set.read_ahead, 2U * IC_MAX_CLUSTER_SIZE);
}

TEST(Options, EverythingGiven) {
    IcOptions o{};
    o.has_cluster_size = true;
    o.cluster_size = 65536;
    o.has_max_inflight = true;
    o.max_inflight = 3;
    o.has_max_fetch = true;
    o.max_fetch = 4 * 65536;
    o.has_read_ahead = true;
    o.read_ahead = 12345;
    const Result c = check(o);
    ASSERT_TRUE(c.ok);
    EXPECT_EQ(c.set.cluster_size, 65536U);
    EXPECT_EQ(c.set.max_inflight, 3U);
    EXPECT_EQ(c.set.max_fetch, 4U * 65536);
    EXPECT_EQ(c.set.read_ahead, 12345U) << "any byte count is accepted";
    const Result r = resolve(o, 65536);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.set.read_ahead, 12345U);
}

TEST(Options, MessagesFitAndTerminate) {
    char why[8];
    IcSettings set{};
    const IcOptions o = inflight(0);
    EXPECT_FALSE(ic_options_check(&o, &set, why, sizeof(why)));
    EXPECT_STREQ(why, "max-inf");
    EXPECT_FALSE(ic_options_check(&o, &set, nullptr, 0));
}

} // namespace
