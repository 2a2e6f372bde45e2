/*
 * Unit tests: header and metadata block encoding, and their validation
 * against damaged, foreign and mismatched input.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "ic_bytes.hpp"
#include "ic_core.hpp"
#include "ic_meta_codec.hpp"
#include "unit_helpers.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>
#include <zlib.h>

namespace {

using intellicache::Core;
using intellicache::HeaderCodec;
using unit::kMiB;

constexpr uint32_t kCs = 64 * 1024;
constexpr uint64_t kBase = 100 * kMiB + 12345;

IcHeaderInfo sample_info() {
    IcHeaderInfo h{};
    h.version = IC_FORMAT_VERSION;
    h.cluster_size = kCs;
    h.base_size = kBase;
    h.instance = 0x0123456789ABCDEFULL;
    for (size_t i = 0; i < IC_FINGERPRINT_SIZE; i++) {
        h.fingerprint[i] = static_cast<uint8_t>(0xA0 + i);
    }
    return h;
}

uint64_t full_size() {
    IcGeometry g{};
    EXPECT_TRUE(ic_geometry_init(&g, kBase, kCs, nullptr, 0));
    return g.file_size;
}

std::vector<uint8_t> encoded(const IcHeaderInfo &h) {
    std::vector<uint8_t> buf(IC_HEADER_SIZE, 0xEE);
    ic_header_encode(&h, buf.data());
    return buf;
}

/* Rewrites the header crc after a deliberate field change. */
void reseal(std::vector<uint8_t> &buf) {
    const uint32_t crc = static_cast<uint32_t>(
        crc32(crc32(0, nullptr, 0), buf.data(), HeaderCodec::kCrcOffset));
    intellicache::put_le32(buf.data() + HeaderCodec::kCrcOffset, crc);
}

struct CheckResult {
    IcHeaderStatus status;
    IcHeaderInfo found;
    std::string why;
};

CheckResult check(const std::vector<uint8_t> &buf, uint64_t file_size,
                  const IcHeaderInfo &expected, size_t len = SIZE_MAX) {
    CheckResult r{};
    char why[256];
    std::memset(why, 'z', sizeof(why));
    r.status = ic_header_check(buf.data(), std::min(len, buf.size()), file_size,
                               &expected, &r.found, why, sizeof(why));
    EXPECT_NE(std::memchr(why, '\0', sizeof(why)), nullptr);
    r.why = why;
    if (r.status != IC_HEADER_OK) {
        EXPECT_FALSE(r.why.empty()) << "status " << r.status;
    }
    return r;
}

TEST(HeaderCodec, RoundTrip) {
    const IcHeaderInfo h = sample_info();
    const auto buf = encoded(h);
    const CheckResult r = check(buf, full_size(), h);
    ASSERT_EQ(r.status, IC_HEADER_OK) << r.why;
    EXPECT_EQ(r.found.version, h.version);
    EXPECT_EQ(r.found.cluster_size, h.cluster_size);
    EXPECT_EQ(r.found.base_size, h.base_size);
    EXPECT_EQ(r.found.instance, h.instance);
    EXPECT_EQ(
        std::memcmp(r.found.fingerprint, h.fingerprint, IC_FINGERPRINT_SIZE),
        0);
    /* The unused part of the header is zero, whatever was in the buffer. */
    for (size_t i = HeaderCodec::kUsedSize; i < IC_HEADER_SIZE; i++) {
        ASSERT_EQ(buf[i], 0) << i;
    }
}

TEST(HeaderCodec, LayoutIsLittleEndianAtFixedOffsets) {
    const IcHeaderInfo h = sample_info();
    const auto buf = encoded(h);
    EXPECT_EQ(std::memcmp(buf.data(), "INTLCACH", 8), 0);
    EXPECT_EQ(intellicache::get_le32(&buf[8]), 1U);
    EXPECT_EQ(intellicache::get_le32(&buf[12]), 4096U);
    EXPECT_EQ(intellicache::get_le32(&buf[16]), kCs);
    EXPECT_EQ(buf[24], 0x39); /* kBase = 0x6403039 */
    EXPECT_EQ(intellicache::get_le64(&buf[24]), kBase);
    EXPECT_EQ(intellicache::get_le64(&buf[32]), (kBase + kCs - 1) / kCs);
    EXPECT_EQ(intellicache::get_le64(&buf[40]), 4096U);
    EXPECT_EQ(intellicache::get_le64(&buf[48]), 1U);
    EXPECT_EQ(intellicache::get_le64(&buf[56]), kMiB);
    EXPECT_EQ(buf[64], 0xEF);
    EXPECT_EQ(buf[72], 0xA0);
}

TEST(HeaderCodec, VersionZeroEncodesCurrentVersion) {
    IcHeaderInfo h = sample_info();
    h.version = 0;
    const CheckResult r = check(encoded(h), full_size(), sample_info());
    EXPECT_EQ(r.status, IC_HEADER_OK) << r.why;
    EXPECT_EQ(r.found.version, uint32_t{IC_FORMAT_VERSION});
}

TEST(HeaderCodec, EveryByteFlipInUsedAreaIsDetected) {
    const IcHeaderInfo h = sample_info();
    const auto good = encoded(h);
    for (size_t i = 0; i < HeaderCodec::kUsedSize; i++) {
        for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xFF}}) {
            auto buf = good;
            buf[i] ^= mask;
            const CheckResult r = check(buf, full_size(), h);
            EXPECT_NE(r.status, IC_HEADER_OK)
                << "flip of byte " << i << " mask " << int{mask};
            if (i >= 8) { /* past the magic: caught by the checksum */
                EXPECT_EQ(r.status, IC_HEADER_CORRUPT) << i;
            }
        }
    }
}

TEST(HeaderCodec, NonZeroTailIsCorrupt) {
    auto buf = encoded(sample_info());
    buf[IC_HEADER_SIZE - 1] = 1;
    const CheckResult r = check(buf, full_size(), sample_info());
    EXPECT_EQ(r.status, IC_HEADER_CORRUPT);
    EXPECT_NE(r.why.find("reserved"), std::string::npos) << r.why;
}

TEST(HeaderCodec, ZeroedIsEmpty) {
    const std::vector<uint8_t> zeros(IC_HEADER_SIZE, 0);
    EXPECT_EQ(check(zeros, 0, sample_info()).status, IC_HEADER_EMPTY);
    EXPECT_EQ(check(zeros, 10 * kMiB, sample_info()).status, IC_HEADER_EMPTY);
    EXPECT_EQ(check(zeros, 100, sample_info(), 100).status, IC_HEADER_EMPTY);
    EXPECT_EQ(check(zeros, 0, sample_info(), 0).status, IC_HEADER_EMPTY);
    /* No buffer at all: an empty file. */
    char why[64];
    EXPECT_EQ(
        ic_header_check(nullptr, 0, 0, nullptr, nullptr, why, sizeof(why)),
        IC_HEADER_EMPTY);
}

TEST(HeaderCodec, ForeignMagic) {
    auto buf = encoded(sample_info());
    std::memcpy(buf.data(), "QFI\xfb\0\0\0\3", 8); /* a qcow2 file */
    const CheckResult r = check(buf, full_size(), sample_info());
    EXPECT_EQ(r.status, IC_HEADER_FOREIGN);
    EXPECT_EQ(r.why, "not an intellicache cache file (bad magic)");
    /* Even when short: a few bytes that are not our magic. */
    EXPECT_EQ(check(buf, 3, sample_info(), 3).status, IC_HEADER_FOREIGN);
    std::vector<uint8_t> text = {'h', 'e', 'l', 'l', 'o'};
    EXPECT_EQ(check(text, 5, sample_info()).status, IC_HEADER_FOREIGN);
    /* Zeros after a non-zero byte are not "empty". */
    std::vector<uint8_t> lone(IC_HEADER_SIZE, 0);
    lone[4000] = 1;
    EXPECT_EQ(check(lone, IC_HEADER_SIZE, sample_info()).status,
              IC_HEADER_FOREIGN);
}

TEST(HeaderCodec, TruncatedBuffers) {
    const IcHeaderInfo h = sample_info();
    const auto buf = encoded(h);
    /* Every length class: inside the magic, the fields, the crc, the tail. */
    for (size_t len : {size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{64},
                       HeaderCodec::kCrcOffset, HeaderCodec::kUsedSize,
                       size_t{IC_HEADER_SIZE - 1}}) {
        const CheckResult r = check(buf, len, h, len);
        EXPECT_EQ(r.status, IC_HEADER_TRUNCATED) << "length " << len;
        EXPECT_NE(r.why.find(std::to_string(len)), std::string::npos) << r.why;
    }
}

TEST(HeaderCodec, NeverReadsPastBufLen) {
    /* Exactly sized heap copies, so a sanitizer build catches any read
     * beyond buf_len; every length from 0 to a full header. */
    const IcHeaderInfo h = sample_info();
    const auto good = encoded(h);
    for (size_t len = 0; len <= IC_HEADER_SIZE; len++) {
        const std::vector<uint8_t> buf(good.begin(),
                                       good.begin() + static_cast<long>(len));
        IcHeaderInfo found;
        const IcHeaderStatus st = ic_header_check(
            buf.data(), buf.size(), full_size(), &h, &found, nullptr, 0);
        if (len == 0) {
            EXPECT_EQ(st, IC_HEADER_EMPTY);
        } else if (len < IC_HEADER_SIZE) {
            ASSERT_EQ(st, IC_HEADER_TRUNCATED) << len;
        } else {
            EXPECT_EQ(st, IC_HEADER_OK);
        }
    }
}

TEST(HeaderCodec, RandomFieldsWithValidCrcNeverPass) {
    /* Hostile but well-sealed headers: random values in the fields.  Any
     * status is fine except OK with an inconsistent layout; no crash. */
    const IcHeaderInfo h = sample_info();
    std::mt19937_64 rng(99);
    int ok = 0;
    for (int round = 0; round < 20000; round++) {
        auto buf = encoded(h);
        const size_t field = 8 + (rng() % 12) * 8; /* a field in [8, 104) */
        const int width = 1 + static_cast<int>(rng() % 8);
        for (int i = 0; i < width && field + i < HeaderCodec::kCrcOffset; i++) {
            buf[field + i] = static_cast<uint8_t>(rng());
        }
        reseal(buf);
        const CheckResult r = check(buf, rng(), h);
        if (r.status == IC_HEADER_OK) {
            ok++;
            /* Only possible if the random bytes changed nothing that
             * matters (e.g. rewrote a field with its own value). */
            EXPECT_EQ(r.found.base_size, h.base_size);
            EXPECT_EQ(r.found.cluster_size, h.cluster_size);
        }
    }
    EXPECT_LT(ok, 20000 / 10);
}

TEST(HeaderCodec, LongerBufferUsesOnlyTheHeader) {
    const IcHeaderInfo h = sample_info();
    auto buf = encoded(h);
    buf.resize(3 * IC_HEADER_SIZE, 0x55);
    EXPECT_EQ(check(buf, full_size(), h).status, IC_HEADER_OK);
}

TEST(HeaderCodec, OtherVersionWithValidCrc) {
    IcHeaderInfo h = sample_info();
    h.version = 2;
    const CheckResult r = check(encoded(h), full_size(), sample_info());
    EXPECT_EQ(r.status, IC_HEADER_VERSION);
    EXPECT_EQ(r.found.version, 2U);
    EXPECT_NE(r.why.find("version 2"), std::string::npos) << r.why;
}

TEST(HeaderCodec, InconsistentGeometryFieldsAreCorrupt) {
    const IcHeaderInfo h = sample_info();
    for (size_t off :
         {HeaderCodec::kClusterCountOffset, HeaderCodec::kMetaOffsetOffset,
          HeaderCodec::kMetaBlocksOffset, HeaderCodec::kDataOffsetOffset}) {
        auto buf = encoded(h);
        intellicache::put_le64(&buf[off],
                               intellicache::get_le64(&buf[off]) + 1);
        reseal(buf);
        const CheckResult r = check(buf, full_size(), h);
        EXPECT_EQ(r.status, IC_HEADER_CORRUPT) << "field at " << off;
        EXPECT_NE(r.why.find("inconsistent"), std::string::npos) << r.why;
    }
}

TEST(HeaderCodec, HostileFieldValuesAreCorrupt) {
    const IcHeaderInfo h = sample_info();
    struct Case {
        size_t offset;
        uint64_t value;
        bool wide;
        const char *why_part;
    };
    const Case cases[] = {
        {HeaderCodec::kClusterSizeOffset, 3000, false, "power of two"},
        {HeaderCodec::kClusterSizeOffset, 0, false, "cluster-size 0"},
        {HeaderCodec::kClusterSizeOffset, 1U << 31, false, "out of range"},
        {HeaderCodec::kBaseSizeOffset, 0, true, "base size 0"},
        {HeaderCodec::kBaseSizeOffset, UINT64_MAX, true, "exceeds"},
        {HeaderCodec::kHeaderSizeOffset, 512, false, "header size 512"},
        {HeaderCodec::kReservedOffset, 7, false, "reserved"},
    };
    for (const Case &c : cases) {
        auto buf = encoded(h);
        if (c.wide) {
            intellicache::put_le64(&buf[c.offset], c.value);
        } else {
            intellicache::put_le32(&buf[c.offset],
                                   static_cast<uint32_t>(c.value));
        }
        reseal(buf);
        const CheckResult r = check(buf, UINT64_MAX, h);
        EXPECT_EQ(r.status, IC_HEADER_CORRUPT) << c.why_part;
        EXPECT_NE(r.why.find(c.why_part), std::string::npos) << r.why;
    }
}

TEST(HeaderCodec, ClusterSizeMismatch) {
    IcHeaderInfo expected = sample_info();
    expected.cluster_size = 128 * 1024;
    const CheckResult r = check(encoded(sample_info()), full_size(), expected);
    EXPECT_EQ(r.status, IC_HEADER_CLUSTER_SIZE);
    EXPECT_NE(r.why.find("65536"), std::string::npos) << r.why;
    EXPECT_NE(r.why.find("131072"), std::string::npos) << r.why;
}

TEST(HeaderCodec, ClusterSizeZeroAdoptsTheCaches) {
    IcHeaderInfo expected = sample_info();
    expected.cluster_size = 0;
    const CheckResult r = check(encoded(sample_info()), full_size(), expected);
    EXPECT_EQ(r.status, IC_HEADER_OK) << r.why;
    EXPECT_EQ(r.found.cluster_size, kCs);
}

TEST(HeaderCodec, BaseSizeMismatch) {
    IcHeaderInfo expected = sample_info();
    expected.base_size = 2 * kMiB;
    const CheckResult r = check(encoded(sample_info()), full_size(), expected);
    EXPECT_EQ(r.status, IC_HEADER_BASE_SIZE);
    EXPECT_EQ(r.why, "cache is for a base of 104869945 bytes, this base has "
                     "2097152 bytes");
}

TEST(HeaderCodec, FingerprintMismatch) {
    IcHeaderInfo expected = sample_info();
    expected.fingerprint[31] ^= 1;
    const CheckResult r = check(encoded(sample_info()), full_size(), expected);
    EXPECT_EQ(r.status, IC_HEADER_FINGERPRINT);
    EXPECT_NE(r.why.find("fingerprint"), std::string::npos) << r.why;
}

TEST(HeaderCodec, FileTooShortIsTruncated) {
    const IcHeaderInfo h = sample_info();
    const auto buf = encoded(h);
    EXPECT_EQ(check(buf, full_size(), h).status, IC_HEADER_OK);
    const CheckResult r = check(buf, full_size() - 1, h);
    EXPECT_EQ(r.status, IC_HEADER_TRUNCATED);
    EXPECT_NE(r.why.find(std::to_string(full_size())), std::string::npos)
        << r.why;
    EXPECT_EQ(check(buf, IC_HEADER_SIZE, h).status, IC_HEADER_TRUNCATED);
}

TEST(HeaderCodec, MismatchesAreReportedInDocumentedOrder) {
    /* Another version beats a mismatching base; a mismatching cluster size
     * beats a mismatching base size, which beats the fingerprint, which
     * beats a short file. */
    IcHeaderInfo expected = sample_info();
    expected.cluster_size = 4096;
    expected.base_size = 1;
    expected.fingerprint[0] ^= 1;
    const auto buf = encoded(sample_info());
    EXPECT_EQ(check(buf, 0, expected).status, IC_HEADER_CLUSTER_SIZE);
    expected.cluster_size = 0;
    EXPECT_EQ(check(buf, 0, expected).status, IC_HEADER_BASE_SIZE);
    expected.base_size = kBase;
    EXPECT_EQ(check(buf, 0, expected).status, IC_HEADER_FINGERPRINT);
    IcHeaderInfo v2 = sample_info();
    v2.version = 7;
    EXPECT_EQ(check(encoded(v2), 0, expected).status, IC_HEADER_VERSION);
}

TEST(HeaderCodec, TinyMessageBufferIsTerminated) {
    auto buf = encoded(sample_info());
    buf[20] ^= 1;
    char why[5];
    std::memset(why, 'q', sizeof(why));
    IcHeaderInfo expected = sample_info();
    EXPECT_EQ(ic_header_check(buf.data(), buf.size(), full_size(), &expected,
                              nullptr, why, sizeof(why)),
              IC_HEADER_CORRUPT);
    EXPECT_EQ(why[4], '\0');
    EXPECT_EQ(ic_header_check(buf.data(), buf.size(), full_size(), &expected,
                              nullptr, nullptr, 0),
              IC_HEADER_CORRUPT);
}

/* ---- Metadata blocks ---- */

class MetaBlockTest : public ::testing::Test {
protected:
    static constexpr uint64_t kInstance = 99;

    void SetUp() override {
        /* Three blocks of 4 KiB clusters; the last one partly used. */
        base_ = (2 * IC_META_BLOCK_CLUSTERS + 100) * 4096ULL - 10;
        ASSERT_TRUE(ic_geometry_init(&g_, base_, 4096, nullptr, 0));
        ASSERT_EQ(g_.meta_blocks, 3U);
        writer_ = fresh(kInstance);
    }

    std::unique_ptr<Core> fresh(uint64_t instance) const {
        return unit::make_core(g_, instance, 16 * 4096);
    }

    /* Marks clusters present and durable in @core via the public API. */
    static void store(Core &core, uint64_t cluster) {
        std::vector<IcSegment> segs(1);
        ASSERT_EQ(core.plan(cluster * 4096, 1, segs), 1U);
        ASSERT_EQ(segs[0].kind, IC_SEG_FETCH);
        core.fetch_done(segs[0].fetch, true);
        core.fetch_stored(segs[0].fetch, true);
    }
    static void sync(Core &core) {
        ASSERT_TRUE(core.sync_begin());
        core.sync_end(true);
    }

    std::array<uint8_t, IC_META_BLOCK_SIZE> block(uint64_t index) const {
        std::array<uint8_t, IC_META_BLOCK_SIZE> b{};
        writer_->encode_meta_block(index, b.data());
        return b;
    }

    uint64_t base_ = 0;
    IcGeometry g_{};
    std::unique_ptr<Core> writer_;
};

TEST_F(MetaBlockTest, RoundTrip) {
    const uint64_t clusters[] = {0,
                                 1,
                                 63,
                                 64,
                                 4095,
                                 IC_META_BLOCK_CLUSTERS - 1,
                                 IC_META_BLOCK_CLUSTERS,
                                 2 * IC_META_BLOCK_CLUSTERS + 99};
    for (uint64_t c : clusters) {
        store(*writer_, c);
    }
    sync(*writer_);

    auto reader = fresh(kInstance);
    for (uint64_t i = 0; i < g_.meta_blocks; i++) {
        const auto b = block(i);
        EXPECT_EQ(reader->load_meta_block(i, b.data()), IC_META_OK) << i;
    }
    for (uint64_t c = 0; c < g_.cluster_count; c++) {
        ASSERT_EQ(reader->cluster_present(c), writer_->cluster_present(c)) << c;
    }
    const IcStats st = reader->stats();
    EXPECT_EQ(st.cached_clusters, std::size(clusters));
    EXPECT_EQ(st.durable_clusters, std::size(clusters)); /* loaded = durable */
    EXPECT_FALSE(reader->sync_needed());
}

TEST_F(MetaBlockTest, BlockFormat) {
    store(*writer_, IC_META_BLOCK_CLUSTERS + 9);
    sync(*writer_);
    const auto b = block(1);
    EXPECT_EQ(std::memcmp(b.data(), "ICBM", 4), 0);
    EXPECT_EQ(intellicache::get_le64(&b[8]), kInstance);
    EXPECT_EQ(b[IC_META_BLOCK_HEADER + 1], 0x02); /* cluster 9: byte 1 bit 1 */
    for (size_t i = IC_META_BLOCK_HEADER; i < IC_META_BLOCK_SIZE; i++) {
        if (i != IC_META_BLOCK_HEADER + 1) {
            ASSERT_EQ(b[i], 0) << i;
        }
    }
}

TEST_F(MetaBlockTest, FlippedBitIsDamaged) {
    store(*writer_, 5);
    sync(*writer_);
    const auto good = block(0);
    for (size_t i :
         {size_t{0}, size_t{3}, size_t{4}, size_t{7}, size_t{8}, size_t{15},
          size_t{16}, size_t{100}, size_t{IC_META_BLOCK_SIZE - 1}}) {
        auto b = good;
        b[i] ^= 0x10;
        auto reader = fresh(kInstance);
        EXPECT_EQ(reader->load_meta_block(0, b.data()), IC_META_DAMAGED) << i;
        EXPECT_EQ(reader->stats().cached_clusters, 0U);
    }
}

TEST_F(MetaBlockTest, BlockAtWrongIndexIsDamaged) {
    store(*writer_, 5);
    sync(*writer_);
    const auto b0 = block(0);
    auto reader = fresh(kInstance);
    EXPECT_EQ(reader->load_meta_block(1, b0.data()), IC_META_DAMAGED);
    EXPECT_EQ(reader->load_meta_block(2, b0.data()), IC_META_DAMAGED);
    EXPECT_FALSE(reader->cluster_present(5));
    EXPECT_FALSE(reader->cluster_present(IC_META_BLOCK_CLUSTERS + 5));
    /* An index beyond the cache is refused without reading anything. */
    EXPECT_EQ(reader->load_meta_block(3, b0.data()), IC_META_DAMAGED);
    EXPECT_EQ(reader->load_meta_block(0, nullptr), IC_META_DAMAGED);
}

TEST_F(MetaBlockTest, OtherInstanceIsStale) {
    store(*writer_, 5);
    sync(*writer_);
    const auto b = block(0);
    auto reader = fresh(kInstance + 1);
    EXPECT_EQ(reader->load_meta_block(0, b.data()), IC_META_STALE);
    EXPECT_FALSE(reader->cluster_present(5));
}

TEST_F(MetaBlockTest, AllZeroIsEmpty) {
    const std::array<uint8_t, IC_META_BLOCK_SIZE> zeros{};
    auto reader = fresh(kInstance);
    EXPECT_EQ(reader->load_meta_block(0, zeros.data()), IC_META_EMPTY);
    EXPECT_EQ(reader->stats().cached_clusters, 0U);
}

TEST_F(MetaBlockTest, EncodedEmptyBlockIsValidNotEmpty) {
    /* A block with no bits still carries magic, instance and crc. */
    const auto b = block(1);
    auto reader = fresh(kInstance);
    EXPECT_EQ(reader->load_meta_block(1, b.data()), IC_META_OK);
    EXPECT_EQ(reader->stats().cached_clusters, 0U);
}

TEST_F(MetaBlockTest, BitsBeyondClusterCountAreIgnored) {
    /* Hand-craft a valid last block with every bit set. */
    intellicache::MetaBlockCodec::Words words;
    words.fill(~uint64_t{0});
    std::array<uint8_t, IC_META_BLOCK_SIZE> b{};
    intellicache::MetaBlockCodec::encode(2, kInstance, words, b.data());
    auto reader = fresh(kInstance);
    EXPECT_EQ(reader->load_meta_block(2, b.data()), IC_META_OK);
    EXPECT_EQ(reader->stats().cached_clusters, 100U); /* clusters left */
    EXPECT_TRUE(reader->cluster_present(g_.cluster_count - 1));
    EXPECT_FALSE(reader->cluster_present(g_.cluster_count));
    /* Re-encoding gives a block with only the real clusters. */
    std::array<uint8_t, IC_META_BLOCK_SIZE> again{};
    reader->encode_meta_block(2, again.data());
    auto second = fresh(kInstance);
    EXPECT_EQ(second->load_meta_block(2, again.data()), IC_META_OK);
    EXPECT_EQ(second->stats().cached_clusters, 100U);
    EXPECT_NE(std::memcmp(again.data(), b.data(), b.size()), 0);
}

TEST_F(MetaBlockTest, EncodeOutOfRangeIndexGivesEmptyBlock) {
    std::array<uint8_t, IC_META_BLOCK_SIZE> b;
    b.fill(0xAB);
    writer_->encode_meta_block(3, b.data());
    for (uint8_t byte : b) {
        ASSERT_EQ(byte, 0);
    }
}

TEST_F(MetaBlockTest, Offsets) {
    EXPECT_EQ(writer_->meta_block_offset(0), 4096U);
    EXPECT_EQ(writer_->meta_block_offset(2), 3 * 4096U);
    EXPECT_LE(writer_->meta_block_offset(g_.meta_blocks - 1) +
                  IC_META_BLOCK_SIZE,
              g_.data_offset);
}

} // namespace
