/*
 * intellicache-ctl: reading a base image through libnfs or libnbd.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "base_reader.hpp"

#include <fcntl.h>
#include <libnbd.h>
#include <nfsc/libnfs.h>

#include <chrono>
#include <cstring>

namespace icctl {

namespace {

/* Waits for libnbd with a deadline: nbd_poll() until @done says so. */
template <typename Done>
void nbd_wait(nbd_handle *nbd, const std::string &what, int timeout_ms,
              Done done) {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(timeout_ms);
    for (;;) {
        const int state = done();
        if (state > 0) {
            return;
        }
        if (state < 0 || nbd_aio_is_dead(nbd) != 0 ||
            nbd_aio_is_closed(nbd) != 0) {
            const char *err = nbd_get_error();
            throw BaseError(what + ": " +
                            (err != nullptr ? err : "connection lost"));
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            throw BaseError(what + ": timed out after " +
                            std::to_string(timeout_ms) + " ms");
        }
        if (nbd_poll(nbd, static_cast<int>(left.count())) < 0) {
            throw BaseError(what + ": " + nbd_get_error());
        }
    }
}

class NbdReader : public BaseReader {
public:
    NbdReader(const std::string &url, int timeout_ms)
        : url_(url), timeout_ms_(timeout_ms) {
        nbd_ = nbd_create();
        if (nbd_ == nullptr) {
            throw BaseError(std::string("libnbd: ") + nbd_get_error());
        }
        try {
            /* A base is read, never written; a local file URL is refused. */
            if (nbd_set_uri_allow_local_file(nbd_, false) < 0 ||
                nbd_aio_connect_uri(nbd_, url.c_str()) < 0) {
                throw BaseError("cannot connect to " + url + ": " +
                                nbd_get_error());
            }
            nbd_wait(nbd_, "cannot connect to " + url, timeout_ms_,
                     [this]() { return nbd_aio_is_ready(nbd_); });
        } catch (...) {
            nbd_close(nbd_);
            throw;
        }
    }
    ~NbdReader() override {
        nbd_shutdown(nbd_, 0);
        nbd_close(nbd_);
    }
    NbdReader(const NbdReader &) = delete;
    NbdReader &operator=(const NbdReader &) = delete;

    std::uint64_t size() override {
        const int64_t s = nbd_get_size(nbd_);
        if (s < 0) {
            throw BaseError("cannot get the size of " + url_ + ": " +
                            nbd_get_error());
        }
        return static_cast<std::uint64_t>(s);
    }

    void read(std::uint8_t *buf, std::size_t len,
              std::uint64_t offset) override {
        const std::string what =
            "cannot read " + url_ + " at " + std::to_string(offset);
        const nbd_completion_callback none{};
        const int64_t cookie = nbd_aio_pread(nbd_, buf, len, offset, none, 0);
        if (cookie < 0) {
            throw BaseError(what + ": " + nbd_get_error());
        }
        nbd_wait(nbd_, what, timeout_ms_, [this, cookie]() {
            return nbd_aio_command_completed(
                nbd_, static_cast<std::uint64_t>(cookie));
        });
    }

private:
    std::string url_;
    int timeout_ms_;
    nbd_handle *nbd_ = nullptr;
};

class NfsReader : public BaseReader {
public:
    NfsReader(const std::string &url, int timeout_ms) : url_(url) {
        nfs_ = nfs_init_context();
        if (nfs_ == nullptr) {
            throw BaseError("libnfs: cannot create a context");
        }
        nfs_set_timeout(nfs_, timeout_ms);
        nfs_url *u = nfs_parse_url_full(nfs_, url.c_str());
        if (u == nullptr) {
            const std::string err = nfs_get_error(nfs_);
            nfs_destroy_context(nfs_);
            throw BaseError("bad NFS URL " + url + ": " + err);
        }
        int ret = nfs_mount(nfs_, u->server, u->path);
        if (ret == 0) {
            ret = nfs_open(nfs_, u->file, O_RDONLY, &fh_);
        }
        nfs_destroy_url(u);
        if (ret != 0) {
            const std::string err = nfs_get_error(nfs_);
            nfs_destroy_context(nfs_);
            throw BaseError("cannot open " + url + ": " + err);
        }
    }
    ~NfsReader() override {
        nfs_close(nfs_, fh_);
        nfs_destroy_context(nfs_);
    }
    NfsReader(const NfsReader &) = delete;
    NfsReader &operator=(const NfsReader &) = delete;

    std::uint64_t size() override {
        nfs_stat_64 st{};
        if (nfs_fstat64(nfs_, fh_, &st) != 0) {
            throw BaseError("cannot stat " + url_ + ": " + nfs_get_error(nfs_));
        }
        return st.nfs_size;
    }

    void read(std::uint8_t *buf, std::size_t len,
              std::uint64_t offset) override {
        std::size_t done = 0;
        while (done < len) {
            const int n =
                nfs_pread(nfs_, fh_, offset + done, len - done, buf + done);
            if (n < 0) {
                throw BaseError("cannot read " + url_ + " at " +
                                std::to_string(offset + done) + ": " +
                                nfs_get_error(nfs_));
            }
            if (n == 0) {
                throw BaseError("cannot read " + url_ + " at " +
                                std::to_string(offset + done) +
                                ": unexpected end of file");
            }
            done += static_cast<std::size_t>(n);
        }
    }

private:
    std::string url_;
    nfs_context *nfs_ = nullptr;
    nfsfh *fh_ = nullptr;
};

} // namespace

std::string BaseReader::scheme_of(const std::string &url) {
    const std::size_t colon = url.find("://");
    if (colon == std::string::npos || colon == 0) {
        throw BaseError("bad base URL '" + url +
                        "': expected nfs://, nbd:// or nbd+unix://");
    }
    std::string scheme = url.substr(0, colon);
    if (scheme == "nfs" || scheme == "nbd" || scheme == "nbd+unix") {
        if (url.size() == colon + 3) {
            throw BaseError("bad base URL '" + url + "': nothing after " +
                            scheme + "://");
        }
        return scheme;
    }
    throw BaseError("bad base URL '" + url + "': unsupported scheme '" +
                    scheme + "' (nfs, nbd or nbd+unix)");
}

std::unique_ptr<BaseReader> BaseReader::open(const std::string &url,
                                             int timeout_ms) {
    const std::string scheme = scheme_of(url);
    if (scheme == "nfs") {
        return std::make_unique<NfsReader>(url, timeout_ms);
    }
    return std::make_unique<NbdReader>(url, timeout_ms);
}

} // namespace icctl
