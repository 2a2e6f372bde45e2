/*
 * Unit tests of intellicache-ctl: cache files read through the core's
 * codecs (what inspect and verify see), and base URLs.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "base_reader.hpp"
#include "cache_file.hpp"
#include "ic_geometry.hpp"
#include "ic_meta_codec.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

namespace {

using icctl::CacheFile;
using icctl::CacheFileError;
using intellicache::MetaBlockCodec;

constexpr std::uint32_t kCs = 4096;
/* Two metadata blocks' worth of clusters and a bit. */
constexpr std::uint64_t kBase =
    (2 * static_cast<std::uint64_t>(IC_META_BLOCK_CLUSTERS) + 100) * kCs - 512;
constexpr std::uint64_t kInstance = 0x1122334455667788ULL;

class TempFile {
public:
    TempFile() {
        char name[] = "/tmp/ctl-unit-XXXXXX";
        const int fd = mkstemp(name);
        EXPECT_GE(fd, 0);
        close(fd);
        path_ = name;
    }
    ~TempFile() { std::remove(path_.c_str()); }
    TempFile(const TempFile &) = delete;
    TempFile &operator=(const TempFile &) = delete;
    const std::string &path() const { return path_; }

    void write_at(std::uint64_t offset, const std::vector<std::uint8_t> &data) {
        std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(offset));
        f.write(reinterpret_cast<const char *>(data.data()),
                static_cast<std::streamsize>(data.size()));
    }
    void resize(std::uint64_t size) {
        ASSERT_EQ(truncate(path_.c_str(), static_cast<off_t>(size)), 0);
    }

private:
    std::string path_;
};

IcGeometry geometry() {
    IcGeometry g{};
    EXPECT_TRUE(ic_geometry_init(&g, kBase, kCs, nullptr, 0));
    return g;
}

/* A formatted cache file with clusters @present recorded. */
void format(TempFile &f, const std::vector<std::uint64_t> &present) {
    const IcGeometry g = geometry();
    f.resize(g.file_size);
    IcHeaderInfo h{};
    h.version = IC_FORMAT_VERSION;
    h.cluster_size = kCs;
    h.base_size = kBase;
    h.instance = kInstance;
    for (std::size_t i = 0; i < IC_FINGERPRINT_SIZE; i++) {
        h.fingerprint[i] = static_cast<std::uint8_t>(i);
    }
    std::vector<std::uint8_t> buf(IC_HEADER_SIZE);
    ic_header_encode(&h, buf.data());
    f.write_at(0, buf);
    for (std::uint64_t b = 0; b < g.meta_blocks; b++) {
        MetaBlockCodec::Words words{};
        bool any = false;
        for (std::uint64_t c : present) {
            if (c / intellicache::kMetaBlockClusters == b) {
                const std::uint64_t i = c % intellicache::kMetaBlockClusters;
                words[i / 64] |= std::uint64_t{1} << (i % 64);
                any = true;
            }
        }
        if (any) {
            std::vector<std::uint8_t> block(IC_META_BLOCK_SIZE);
            MetaBlockCodec::encode(b, kInstance, words, block.data());
            f.write_at(g.meta_offset + b * IC_META_BLOCK_SIZE, block);
        }
    }
}

TEST(CtlCacheFile, HeaderAndRecordedRuns) {
    TempFile f;
    const std::uint64_t last = geometry().cluster_count - 1;
    format(f, {0, 1, 2, 7, IC_META_BLOCK_CLUSTERS - 1, IC_META_BLOCK_CLUSTERS,
               last});
    const CacheFile c(f.path());
    EXPECT_EQ(c.header().version,
              static_cast<std::uint32_t>(IC_FORMAT_VERSION));
    EXPECT_EQ(c.geometry().base_size(), kBase);
    EXPECT_EQ(c.geometry().cluster_size(), kCs);
    EXPECT_EQ(c.geometry().meta_blocks(), 3U);
    EXPECT_EQ(c.fingerprint_hex().substr(0, 8), "00010203");
    std::uint64_t recorded = 0;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> runs;
    const auto health = c.scan(recorded, [&](std::uint64_t a, std::uint64_t n) {
        runs.emplace_back(a, n);
    });
    EXPECT_EQ(recorded, 7U);
    EXPECT_EQ(health.ok, 3U);
    EXPECT_TRUE(health.healthy());
    /* A run continues across the boundary of two metadata blocks. */
    const std::vector<std::pair<std::uint64_t, std::uint64_t>> want = {
        {0, 3}, {7, 1}, {IC_META_BLOCK_CLUSTERS - 1, 2}, {last, 1}};
    EXPECT_EQ(runs, want);
}

TEST(CtlCacheFile, DamagedAndEmptyMetadataBlocks) {
    TempFile f;
    format(f, {5, IC_META_BLOCK_CLUSTERS + 5});
    /* Flip a presence bit of block 1 without fixing its checksum. */
    const IcGeometry g = geometry();
    f.write_at(g.meta_offset + IC_META_BLOCK_SIZE + 100, {0xFF});
    const CacheFile c(f.path());
    std::uint64_t recorded = 0;
    const auto health = c.scan(recorded);
    EXPECT_EQ(recorded, 1U);
    EXPECT_EQ(health.ok, 1U);
    EXPECT_EQ(health.damaged, 1U);
    EXPECT_EQ(health.empty, 1U);
    EXPECT_FALSE(health.healthy());
    EXPECT_EQ(health.bad_blocks, std::vector<std::uint64_t>{1});
}

TEST(CtlCacheFile, NotACacheIsOneLine) {
    TempFile f;
    f.write_at(0, std::vector<std::uint8_t>(8192, 'x'));
    try {
        const CacheFile c(f.path());
        FAIL() << "accepted a foreign file";
    } catch (const CacheFileError &e) {
        const std::string what = e.what();
        EXPECT_EQ(what.rfind(f.path() + ": not an intellicache", 0), 0U)
            << what;
        EXPECT_EQ(what.find('\n'), std::string::npos);
    }
    TempFile empty;
    EXPECT_THROW(CacheFile{empty.path()}, CacheFileError);
    EXPECT_THROW(CacheFile{"/nonexistent/cache.img"}, CacheFileError);
    EXPECT_THROW(CacheFile{"/tmp"}, CacheFileError);
}

TEST(CtlCacheFile, ReadsClusterData) {
    TempFile f;
    format(f, {3});
    const IcGeometry g = geometry();
    f.write_at(g.data_offset + 3 * kCs, std::vector<std::uint8_t>(kCs, 0xAB));
    const CacheFile c(f.path());
    std::vector<std::uint8_t> buf(2 * kCs, 0);
    c.read_clusters(3, 2, buf.data());
    EXPECT_EQ(buf[0], 0xAB);
    EXPECT_EQ(buf[kCs - 1], 0xAB);
    EXPECT_EQ(buf[kCs], 0); /* sparse: zeros */
}

TEST(CtlBaseUrl, Schemes) {
    using icctl::BaseError;
    using icctl::BaseReader;
    EXPECT_EQ(BaseReader::scheme_of("nfs://server/export/base.img"), "nfs");
    EXPECT_EQ(BaseReader::scheme_of("nbd://127.0.0.1:10809/base"), "nbd");
    EXPECT_EQ(BaseReader::scheme_of("nbd+unix:///base?socket=/run/b.sock"),
              "nbd+unix");
    EXPECT_THROW(BaseReader::scheme_of("http://x/y"), BaseError);
    EXPECT_THROW(BaseReader::scheme_of("/path/to/base.img"), BaseError);
    EXPECT_THROW(BaseReader::scheme_of("nfs://"), BaseError);
    /* Nothing listens there: a clear error, at once. */
    EXPECT_THROW(
        BaseReader::open("nbd+unix:///x?socket=/nonexistent.sock", 2000),
        BaseError);
}

} // namespace
