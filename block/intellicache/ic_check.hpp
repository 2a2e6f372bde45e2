/*
 * intellicache core: always-on checks of the call protocol.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_CHECK_HPP
#define IC_CHECK_HPP

namespace intellicache {

/*
 * Prints "intellicache: protocol error: <message> [<file>:<line>: <cond>]"
 * on stderr and aborts.  Never returns.
 */
__attribute__((noreturn, format(printf, 4, 5))) void
check_failed(const char *file, int line, const char *cond, const char *fmt,
             ...);

} // namespace intellicache

/*
 * IC_CHECK(cond, fmt, ...): abort with a message unless @cond holds.
 *
 * For misuse of the C API by the glue (an unknown fetch id, a call in the
 * wrong state): going on would corrupt the cache state, and guessing what
 * the glue meant would hide its bug.  Unlike assert(), it stays in release
 * builds (NDEBUG): the checks are a few compares on calls that are rare
 * next to the I/O they stand for.
 */
#define IC_CHECK(cond, ...)                                                    \
    do {                                                                       \
        if (!(cond)) [[unlikely]] {                                            \
            ::intellicache::check_failed(__FILE__, __LINE__, #cond,            \
                                         __VA_ARGS__);                         \
        }                                                                      \
    } while (0)

#endif
