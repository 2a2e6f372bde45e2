/*
 * intellicache core: bounded, always NUL-terminated reason messages.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_MESSAGE_HPP
#define IC_MESSAGE_HPP

#include <cstddef>

namespace intellicache {

/*
 * The (char *why, size_t why_len) pair of the C API.  A null or zero-sized
 * buffer silently drops the message, so callers that do not care pass NULL.
 * The buffer starts out as "" so it holds a string even on success.
 */
class MessageBuffer {
public:
    MessageBuffer(char *buf, std::size_t len)
        : buf_(buf), len_(buf != nullptr ? len : 0) {
        if (len_ != 0) {
            buf_[0] = '\0';
        }
    }

    /* printf-style; truncates to fit and always NUL-terminates. */
    __attribute__((format(printf, 2, 3))) void set(const char *fmt, ...);

private:
    char *buf_;
    std::size_t len_;
};

} // namespace intellicache

#endif
