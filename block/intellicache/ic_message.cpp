/*
 * intellicache core: bounded, always NUL-terminated reason messages.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_message.hpp"

#include <cstdarg>
#include <cstdio>

namespace intellicache {

void MessageBuffer::set(const char *fmt, ...) {
    if (len_ == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    /*
     * vsnprintf NUL-terminates within len_ bytes whatever the message.
     * (clang-tidy 14 reports an uninitialized va_list here only when it
     * analyses several files in one run: checker state leaks between
     * translation units.  Analysed alone, the file is clean.)
     */
    // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
    const int n = std::vsnprintf(buf_, len_, fmt, ap);
    va_end(ap);
    if (n < 0) {
        buf_[0] = '\0';
    }
}

} // namespace intellicache
