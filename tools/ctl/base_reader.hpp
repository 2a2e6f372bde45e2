/*
 * intellicache-ctl: reading a base image by URL, as the daemon's base
 * node would: nfs:// through libnfs, nbd:// and nbd+unix:// through
 * libnbd.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ICCTL_BASE_READER_HPP
#define ICCTL_BASE_READER_HPP

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

namespace icctl {

/* The URL is invalid, or the base cannot be reached or read. */
class BaseError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class BaseReader {
public:
    virtual ~BaseReader() = default;
    BaseReader() = default;
    BaseReader(const BaseReader &) = delete;
    BaseReader &operator=(const BaseReader &) = delete;

    virtual std::uint64_t size() = 0;
    /* Exactly @len bytes at @offset, or BaseError. */
    virtual void read(std::uint8_t *buf, std::size_t len,
                      std::uint64_t offset) = 0;

    /* The scheme of @url ("nfs", "nbd", "nbd+unix"), or BaseError for a
     * URL no reader handles. */
    static std::string scheme_of(const std::string &url);
    /* A connected reader for @url; I/O waits at most @timeout_ms. */
    static std::unique_ptr<BaseReader> open(const std::string &url,
                                            int timeout_ms);
};

} // namespace icctl

#endif
