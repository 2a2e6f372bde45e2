/*
 * intellicache-ctl: a QMP client over a unix socket.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qmp_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace icctl {

namespace {

/* A QMP reply of a daemon with many nodes is large, but not this large. */
constexpr std::size_t kMaxMessage = std::size_t{64} * 1024 * 1024;

std::string errno_text(int err) {
    return std::strerror(err);
}

} // namespace

QmpClient::QmpClient(std::string socket_path, std::chrono::milliseconds timeout)
    : path_(std::move(socket_path)), timeout_(timeout) {
    deadline_ = std::chrono::steady_clock::now() + timeout_;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_.empty() || path_.size() >= sizeof(addr.sun_path)) {
        throw QmpError("QMP socket path '" + path_ +
                       "' is empty or too long for a unix socket");
    }
    std::copy(path_.begin(), path_.end(), addr.sun_path);
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
        throw QmpError("cannot create a unix socket: " + errno_text(errno));
    }
    /* Connecting to a unix socket does not block for long: no listener
     * fails at once with ECONNREFUSED or ENOENT. */
    if (connect(fd_, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) < 0) {
        const int err = errno;
        close(fd_);
        fd_ = -1;
        throw QmpError("no daemon at QMP socket " + path_ + ": " +
                       errno_text(err));
    }
    try {
        JsonPtr greeting = read_message();
        if (json_member(greeting.get(), "QMP") == nullptr) {
            throw QmpError(path_ + " does not speak QMP (no greeting)");
        }
        execute("qmp_capabilities");
    } catch (...) {
        close(fd_);
        fd_ = -1;
        throw;
    }
}

QmpClient::~QmpClient() {
    if (fd_ >= 0) {
        close(fd_);
    }
}

int QmpClient::remaining_ms() const {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline_ - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<std::int64_t>(left.count(), 0));
}

void QmpClient::write_all(const std::string &data) {
    std::size_t done = 0;
    while (done < data.size()) {
        pollfd p{fd_, POLLOUT, 0};
        const int ready = poll(&p, 1, remaining_ms());
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        if (ready <= 0) {
            throw QmpError("timed out writing to QMP socket " + path_);
        }
        const ssize_t n =
            send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            throw QmpError("cannot write to QMP socket " + path_ + ": " +
                           errno_text(errno));
        }
        done += static_cast<std::size_t>(n);
    }
}

std::string QmpClient::read_line() {
    for (;;) {
        const std::size_t nl = buffer_.find('\n');
        if (nl != std::string::npos) {
            std::string line = buffer_.substr(0, nl);
            buffer_.erase(0, nl + 1);
            return line;
        }
        if (buffer_.size() > kMaxMessage) {
            throw QmpError("QMP message from " + path_ + " is too large");
        }
        pollfd p{fd_, POLLIN, 0};
        const int ready = poll(&p, 1, remaining_ms());
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        if (ready <= 0) {
            throw QmpError("timed out after " +
                           std::to_string(timeout_.count()) +
                           " ms waiting for the daemon at " + path_);
        }
        char chunk[65536];
        const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            throw QmpError("cannot read from QMP socket " + path_ + ": " +
                           errno_text(errno));
        }
        if (n == 0) {
            throw QmpError("the daemon at " + path_ +
                           " closed the QMP connection");
        }
        buffer_.append(chunk, static_cast<std::size_t>(n));
    }
}

JsonPtr QmpClient::read_message() {
    for (;;) {
        std::string line = read_line();
        if (line.find_first_not_of(" \t\r") == std::string::npos) {
            continue;
        }
        std::string error;
        JsonPtr msg = json_parse(line, error);
        if (!msg || !json_is(msg.get(), json_type_object)) {
            throw QmpError("malformed QMP message from " + path_ + ": " +
                           (msg ? "not an object" : error));
        }
        if (json_member(msg.get(), "event") != nullptr) {
            if (events_.size() == kMaxEvents) {
                events_.erase(events_.begin());
            }
            events_.push_back(std::move(msg));
            continue;
        }
        return msg;
    }
}

std::vector<JsonPtr> QmpClient::take_events() {
    return std::exchange(events_, {});
}

JsonPtr QmpClient::execute(const std::string &command, json_object *args) {
    if (fd_ < 0) {
        throw QmpError("QMP connection to " + path_ + " is closed");
    }
    deadline_ = std::chrono::steady_clock::now() + timeout_;
    JsonPtr request(json_object_new_object());
    json_object_object_add(request.get(), "execute",
                           json_object_new_string(command.c_str()));
    if (args != nullptr) {
        json_object_object_add(request.get(), "arguments",
                               json_object_get(args));
    }
    write_all(json_dump(request.get(), false) + "\n");
    JsonPtr reply = read_message();
    if (json_object *error = json_member(reply.get(), "error")) {
        const auto desc = json_string(error, "desc");
        throw QmpError(command +
                       " failed: " + desc.value_or("(no description)"));
    }
    json_object *ret = json_member(reply.get(), "return");
    if (ret == nullptr) {
        throw QmpError("reply to " + command + " from " + path_ +
                       " has no return value");
    }
    return json_ref(ret);
}

} // namespace icctl
