/*
 * intellicache-ctl: a cache file read directly through the core's codecs.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "cache_file.hpp"

#include "ic_message.hpp"
#include "ic_meta_codec.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <bit>
#include <cerrno>
#include <cstring>

namespace icctl {

namespace {

constexpr std::size_t kMaxBadBlocksListed = 8;

} // namespace

CacheFile::CacheFile(const std::string &path) : path_(path) {
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
        throw CacheFileError("cannot open " + path + ": " +
                             std::strerror(errno));
    }
    struct stat st {};
    if (fstat(fd_, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd_);
        throw CacheFileError(path + " is not a regular file");
    }
    file_size_ = static_cast<std::uint64_t>(st.st_size);
    allocated_ = static_cast<std::uint64_t>(st.st_blocks) * 512;

    std::array<std::uint8_t, IC_HEADER_SIZE> buf{};
    const ssize_t n = pread(fd_, buf.data(), buf.size(), 0);
    if (n < 0) {
        const int err = errno;
        close(fd_);
        throw CacheFileError("cannot read " + path + ": " + std::strerror(err));
    }
    char why[256];
    intellicache::MessageBuffer msg(why, sizeof(why));
    const IcHeaderStatus status = intellicache::HeaderCodec::check(
        buf.data(), static_cast<std::size_t>(n), file_size_, nullptr, &header_,
        msg);
    if (status != IC_HEADER_OK) {
        close(fd_);
        fd_ = -1;
        throw CacheFileError(path + ": " + why);
    }
    geometry_ = intellicache::Geometry::compute(header_.base_size,
                                                header_.cluster_size, msg);
    if (!geometry_) {
        close(fd_);
        fd_ = -1;
        throw CacheFileError(path + " is not a usable cache file: " + why);
    }
}

CacheFile::~CacheFile() {
    if (fd_ >= 0) {
        close(fd_);
    }
}

std::string CacheFile::fingerprint_hex() const {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (std::uint8_t b : header_.fingerprint) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

void CacheFile::pread_exact(std::uint8_t *buf, std::size_t len,
                            std::uint64_t offset) const {
    std::size_t done = 0;
    while (done < len) {
        const ssize_t n = pread(fd_, buf + done, len - done,
                                static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            throw CacheFileError("cannot read " + path_ + ": " +
                                 std::strerror(errno));
        }
        if (n == 0) {
            /* Past the end of a sparse file: zeros. */
            std::memset(buf + done, 0, len - done);
            return;
        }
        done += static_cast<std::size_t>(n);
    }
}

MetaHealth CacheFile::scan(
    std::uint64_t &recorded,
    const std::function<void(std::uint64_t, std::uint64_t)> &runs) const {
    using intellicache::MetaBlockCodec;
    MetaHealth health;
    recorded = 0;
    const IcGeometry &g = geometry_->raw();
    std::vector<std::uint8_t> block(IC_META_BLOCK_SIZE);
    MetaBlockCodec::Words words{};
    std::uint64_t run_first = 0;
    std::uint64_t run_len = 0;
    auto flush = [&]() {
        if (run_len != 0 && runs) {
            runs(run_first, run_len);
        }
        run_len = 0;
    };
    for (std::uint64_t b = 0; b < g.meta_blocks; b++) {
        pread_exact(block.data(), block.size(),
                    g.meta_offset + b * IC_META_BLOCK_SIZE);
        const IcMetaStatus st =
            MetaBlockCodec::decode(b, header_.instance, block.data(), words);
        if (st != IC_META_OK) {
            flush();
        }
        switch (st) {
        case IC_META_OK:
            health.ok++;
            break;
        case IC_META_EMPTY:
            health.empty++;
            continue;
        case IC_META_STALE:
            health.stale++;
            break;
        case IC_META_DAMAGED:
            health.damaged++;
            break;
        }
        if (st != IC_META_OK) {
            if (health.bad_blocks.size() < kMaxBadBlocksListed) {
                health.bad_blocks.push_back(b);
            }
            continue;
        }
        const std::uint64_t base = b * intellicache::kMetaBlockClusters;
        for (std::size_t w = 0; w < words.size(); w++) {
            std::uint64_t word = words[w];
            if (word == 0) {
                flush();
                continue;
            }
            for (unsigned bit = 0; bit < 64; bit++) {
                const std::uint64_t cluster = base + w * 64 + bit;
                if (cluster >= g.cluster_count) {
                    break;
                }
                if (((word >> bit) & 1U) != 0) {
                    recorded++;
                    if (run_len != 0 && run_first + run_len == cluster) {
                        run_len++;
                    } else {
                        flush();
                        run_first = cluster;
                        run_len = 1;
                    }
                }
            }
        }
    }
    flush();
    return health;
}

void CacheFile::read_clusters(std::uint64_t first, std::uint64_t count,
                              std::uint8_t *buf) const {
    pread_exact(buf, count * geometry_->cluster_size(),
                geometry_->slot_start(first));
}

} // namespace icctl
