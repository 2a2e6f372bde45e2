/*
 * Unit tests: what the base's fingerprint is computed over
 * (ic_fingerprint_preamble, ic_fingerprint_plan).
 *
 * The fingerprint is part of the on-disk format: existing caches stay
 * valid only if the hash input is exactly what the glue hashed before the
 * plan moved into the core.  The tests compare against that loop, copied
 * here as it was, and pin a few answers outright.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <random>
#include <vector>

namespace {

constexpr uint64_t kTiB = uint64_t{1} << 40;

struct Sample {
    uint64_t offset;
    uint64_t bytes;
    bool operator==(const Sample &) const = default;
};

/* The loop of ic_base_fingerprint() in block/intellicache.c as it was, with
 * QEMU_ALIGN_DOWN and MIN spelled out and the reads recorded. */
std::vector<Sample> old_glue_samples(uint64_t base_size) {
    std::vector<Sample> out;
    uint64_t last = 0;
    for (int i = 0; i < 16; i++) {
        uint64_t step = base_size / (16 - 1);
        uint64_t off = (step * i) / 4096 * 4096;
        uint64_t len;

        off = std::min(off, (base_size - 1) / 4096 * 4096);
        if (i > 0 && off == last) {
            continue;
        }
        last = off;
        len = std::min<uint64_t>(4096, base_size - off);
        out.push_back({off, len});
    }
    return out;
}

std::vector<Sample> plan(uint64_t base_size) {
    std::array<IcRange, IC_FINGERPRINT_SAMPLES + 1> ranges{};
    ranges.back() = IcRange{77, 77}; /* canary */
    const size_t n = ic_fingerprint_plan(base_size, ranges.data());
    EXPECT_LE(n, size_t{IC_FINGERPRINT_SAMPLES});
    EXPECT_EQ(ranges.back().offset, 77U) << "wrote past the samples";
    std::vector<Sample> out;
    for (size_t i = 0; i < n; i++) {
        out.push_back({ranges[i].offset, ranges[i].bytes});
    }
    return out;
}

void expect_same_as_old_glue(uint64_t base_size) {
    SCOPED_TRACE(testing::Message() << "base size " << base_size);
    const auto got = plan(base_size);
    EXPECT_EQ(got, old_glue_samples(base_size));
    /* What the header promises: sorted, not overlapping, within the base. */
    for (size_t i = 0; i < got.size(); i++) {
        EXPECT_GT(got[i].bytes, 0U);
        EXPECT_LE(got[i].bytes, uint64_t{IC_FINGERPRINT_SAMPLE_SIZE});
        EXPECT_LE(got[i].offset + got[i].bytes, base_size);
        if (i > 0) {
            EXPECT_GE(got[i].offset, got[i - 1].offset + got[i - 1].bytes);
        }
    }
}

TEST(Fingerprint, PreambleIsSchemeThenLittleEndianSize) {
    std::array<uint8_t, IC_FINGERPRINT_PREAMBLE_MAX + 1> out{};
    out.fill(0xEE);
    const uint64_t size = 0x0102030405060708ULL;
    ASSERT_EQ(ic_fingerprint_preamble(size, out.data()), 34U);
    EXPECT_EQ(std::memcmp(out.data(), "intellicache-fingerprint-1", 26), 0);
    const std::array<uint8_t, 8> le{8, 7, 6, 5, 4, 3, 2, 1};
    EXPECT_TRUE(std::equal(le.begin(), le.end(), out.begin() + 26));
    EXPECT_EQ(out[34], 0xEE) << "nothing written past the preamble";
    EXPECT_EQ(out.back(), 0xEE);
}

TEST(Fingerprint, PreambleOfSmallAndLargeSizes) {
    std::array<uint8_t, IC_FINGERPRINT_PREAMBLE_MAX> out{};
    ASSERT_EQ(ic_fingerprint_preamble(1, out.data()), 34U);
    EXPECT_EQ(out[26], 1);
    EXPECT_TRUE(std::all_of(out.begin() + 27, out.begin() + 34,
                            [](uint8_t b) { return b == 0; }));
    ASSERT_EQ(ic_fingerprint_preamble(kTiB + 1, out.data()), 34U);
    EXPECT_EQ(out[26], 1);
    EXPECT_EQ(out[31], 1) << "2^40 is bit 0 of byte 5";
}

TEST(Fingerprint, SameAsTheOldGlueForSmallAndOddSizes) {
    for (const uint64_t size :
         {uint64_t{1}, uint64_t{2}, uint64_t{4095}, uint64_t{4096},
          uint64_t{4097}, uint64_t{8191}, uint64_t{8192}, uint64_t{12293},
          uint64_t{15 * 4096 - 1}, uint64_t{15 * 4096}, uint64_t{15 * 4096 + 1},
          uint64_t{16 * 4096}, uint64_t{64 * 1024}, uint64_t{1 << 20},
          uint64_t{10 * 1024 * 1024 + 4321}, kTiB, kTiB + 1,
          uint64_t{IC_MAX_BASE_SIZE}, UINT64_MAX}) {
        expect_same_as_old_glue(size);
    }
}

TEST(Fingerprint, SameAsTheOldGlueForRandomSizes) {
    std::mt19937_64 rng(20260113);
    for (int i = 0; i < 20000 && !HasFailure(); i++) {
        /* Sizes of every magnitude, and many just around 4 KiB steps. */
        const unsigned bits = 1 + rng() % 54;
        uint64_t size = rng() & ((uint64_t{1} << bits) - 1);
        if (rng() % 3 == 0) {
            size = (size / 4096 + rng() % 3) * 4096 + rng() % 3;
        }
        if (size == 0) {
            size = 1;
        }
        expect_same_as_old_glue(size);
    }
}

/* Pinned answers, independent of any re-implementation. */
TEST(Fingerprint, PinnedPlans) {
    EXPECT_EQ(plan(1), (std::vector<Sample>{{0, 1}}));
    EXPECT_EQ(plan(4095), (std::vector<Sample>{{0, 4095}}));
    /* Steps below 4 KiB all align to 0: one sample. */
    EXPECT_EQ(plan(4097), (std::vector<Sample>{{0, 4096}}));
    /* 15 steps of exactly 4 KiB: the last sample is one byte. */
    const auto short_last = plan(15 * 4096 + 1);
    ASSERT_EQ(short_last.size(), 16U);
    EXPECT_EQ(short_last[1], (Sample{4096, 4096}));
    EXPECT_EQ(short_last[15], (Sample{61440, 1}));
    /* The tail past the last sample's boundary is never sampled. */
    EXPECT_EQ(plan(12293),
              (std::vector<Sample>{{0, 4096}, {4096, 4096}, {8192, 4096}}));
    EXPECT_EQ(plan(64 * 1024).size(), 16U);
    const auto mib = plan(1 << 20);
    ASSERT_EQ(mib.size(), 16U);
    EXPECT_EQ(mib[1], (Sample{69632, 4096}));
    EXPECT_EQ(mib[15], (Sample{1044480, 4096}));
    const auto tib = plan(kTiB + 1);
    ASSERT_EQ(tib.size(), 16U);
    EXPECT_EQ(tib[1], (Sample{73300774912, 4096}));
    /* 15 steps fall short of the end: the byte past 1 TiB is not read. */
    EXPECT_EQ(tib[15], (Sample{kTiB - 4096, 4096}));
}

TEST(Fingerprint, EmptyBaseHasNoSamples) {
    std::array<IcRange, IC_FINGERPRINT_SAMPLES> ranges{};
    EXPECT_EQ(ic_fingerprint_plan(0, ranges.data()), 0U);
}

} // namespace
