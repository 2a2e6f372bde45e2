/*
 * Counting replacement of the global operator new, for tests asserting
 * that a path does not allocate.  Link alloc_counter.cpp into the test.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ALLOC_COUNTER_HPP
#define ALLOC_COUNTER_HPP

#include <cstdint>

namespace unit {

/* Number of operator new calls so far in this process. */
std::uint64_t allocation_count();

} // namespace unit

#endif
