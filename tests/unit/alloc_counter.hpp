/*
 * Counting replacement of the global operator new, for tests asserting
 * that a path does not allocate, and able to fail large allocations, for
 * tests of what happens when memory runs out (without really exhausting
 * it, which would also starve the test framework and the sanitizers).
 * Link alloc_counter.cpp into the test.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ALLOC_COUNTER_HPP
#define ALLOC_COUNTER_HPP

#include <cstddef>
#include <cstdint>

namespace unit {

/* Number of operator new calls so far in this process. */
std::uint64_t allocation_count();

/*
 * While alive, operator new throws std::bad_alloc for requests of at least
 * @bytes (nested scopes restore the previous limit).
 */
class FailAllocationsFrom {
public:
    explicit FailAllocationsFrom(std::size_t bytes);
    ~FailAllocationsFrom();
    FailAllocationsFrom(const FailAllocationsFrom &) = delete;
    FailAllocationsFrom &operator=(const FailAllocationsFrom &) = delete;
    FailAllocationsFrom(FailAllocationsFrom &&) = delete;
    FailAllocationsFrom &operator=(FailAllocationsFrom &&) = delete;

private:
    std::size_t previous_;
};

} // namespace unit

#endif
