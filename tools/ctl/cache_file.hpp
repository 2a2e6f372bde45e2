/*
 * intellicache-ctl: a cache file read directly, through the core's own
 * codecs (block/intellicache: HeaderCodec, MetaBlockCodec, Geometry).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ICCTL_CACHE_FILE_HPP
#define ICCTL_CACHE_FILE_HPP

#include "ic_geometry.hpp"
#include "intellicache-core.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace icctl {

/* The file cannot be read, or is not a usable cache file. */
class CacheFileError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/* How the metadata blocks of a cache file decoded. */
struct MetaHealth {
    std::uint64_t ok = 0;
    std::uint64_t empty = 0;   /* never written: no clusters recorded */
    std::uint64_t stale = 0;   /* of an earlier format instance: ignored */
    std::uint64_t damaged = 0; /* bad checksum or field: ignored */
    std::vector<std::uint64_t> bad_blocks; /* stale or damaged, first few */

    bool healthy() const { return stale == 0 && damaged == 0; }
};

class CacheFile {
public:
    /* Opens @path read-only and checks its header; throws CacheFileError
     * with one line naming the file and what is wrong. */
    explicit CacheFile(const std::string &path);
    ~CacheFile();
    CacheFile(const CacheFile &) = delete;
    CacheFile &operator=(const CacheFile &) = delete;

    const std::string &path() const { return path_; }
    const IcHeaderInfo &header() const { return header_; }
    const intellicache::Geometry &geometry() const { return *geometry_; }
    std::uint64_t file_size() const { return file_size_; }
    /* Bytes the file takes on disk (it is sparse). */
    std::uint64_t allocated_bytes() const { return allocated_; }
    std::string fingerprint_hex() const;

    /*
     * Reads every metadata block; calls @recorded(first, count) for each
     * run of clusters recorded as present, in order (when given), and
     * returns the blocks' health and the number of recorded clusters.
     */
    MetaHealth scan(std::uint64_t &recorded,
                    const std::function<void(std::uint64_t, std::uint64_t)>
                        &runs = {}) const;

    /* Reads the data of clusters [first, first + count) into @buf. */
    void read_clusters(std::uint64_t first, std::uint64_t count,
                       std::uint8_t *buf) const;

private:
    void pread_exact(std::uint8_t *buf, std::size_t len,
                     std::uint64_t offset) const;

    std::string path_;
    int fd_ = -1;
    std::uint64_t file_size_ = 0;
    std::uint64_t allocated_ = 0;
    IcHeaderInfo header_{};
    std::optional<intellicache::Geometry> geometry_;
};

} // namespace icctl

#endif
