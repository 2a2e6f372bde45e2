/*
 * intellicache core: always-on checks of the call protocol.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_check.hpp"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace intellicache {

void check_failed(const char *file, int line, const char *cond, const char *fmt,
                  ...) {
    /* The file name without its directories: build paths say nothing. */
    const char *slash = std::strrchr(file, '/');
    const char *name = slash != nullptr ? slash + 1 : file;
    std::fputs("intellicache: protocol error: ", stderr);
    va_list ap;
    va_start(ap, fmt);
    // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): see ic_message.cpp
    std::vfprintf(stderr, fmt, ap);
    va_end(ap);
    std::fprintf(stderr, " [%s:%d: %s]\n", name, line, cond);
    std::fflush(stderr);
    std::abort();
}

} // namespace intellicache
