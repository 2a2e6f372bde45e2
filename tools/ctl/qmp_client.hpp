/*
 * intellicache-ctl: a QMP client over a unix socket.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ICCTL_QMP_CLIENT_HPP
#define ICCTL_QMP_CLIENT_HPP

#include "json.hpp"

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace icctl {

/* The daemon could not be reached, did not answer in time, or refused a
 * command; what() is one line for the user. */
class QmpError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/*
 * One QMP session: connect, negotiate capabilities, then commands one at
 * a time.  Events arriving in between are kept for take_events().  Every wait
 * on the socket is bounded by the timeout given at connect time.
 */
class QmpClient {
public:
    QmpClient(std::string socket_path, std::chrono::milliseconds timeout);
    ~QmpClient();
    QmpClient(const QmpClient &) = delete;
    QmpClient &operator=(const QmpClient &) = delete;

    /* The "return" member of the reply to @command; throws QmpError with
     * the daemon's error description. @args may be nullptr. */
    JsonPtr execute(const std::string &command, json_object *args = nullptr);

    const std::string &socket_path() const { return path_; }

    /* The events received since the last call, oldest first (at most
     * kMaxEvents: older ones are dropped). */
    std::vector<JsonPtr> take_events();
    static constexpr std::size_t kMaxEvents = 256;

private:
    JsonPtr read_message();
    std::string read_line();
    void write_all(const std::string &data);
    int remaining_ms() const;

    std::string path_;
    std::chrono::milliseconds timeout_;
    std::chrono::steady_clock::time_point deadline_;
    int fd_ = -1;
    std::string buffer_;
    std::vector<JsonPtr> events_;
};

} // namespace icctl

#endif
