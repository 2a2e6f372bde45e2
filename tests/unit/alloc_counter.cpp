/*
 * Counting replacement of the global operator new (see alloc_counter.hpp).
 * In its own translation unit so the compiler never sees a new/free pair
 * inlined together (which it would flag as mismatched).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "alloc_counter.hpp"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace {
std::atomic<std::uint64_t> g_allocations{0};
std::atomic<std::size_t> g_fail_from{SIZE_MAX};
} // namespace

std::uint64_t unit::allocation_count() {
    return g_allocations.load();
}

unit::FailAllocationsFrom::FailAllocationsFrom(std::size_t bytes)
    : previous_(g_fail_from.exchange(bytes)) {}

unit::FailAllocationsFrom::~FailAllocationsFrom() {
    g_fail_from.store(previous_);
}

void *operator new(std::size_t size) {
    g_allocations++;
    if (size >= g_fail_from.load()) {
        throw std::bad_alloc();
    }
    if (void *p = std::malloc(size != 0 ? size : 1)) {
        return p;
    }
    throw std::bad_alloc();
}
void *operator new[](std::size_t size) {
    return ::operator new(size);
}
/* The nothrow forms too: they must pair with the delete below, and fail
 * like the others. */
void *operator new(std::size_t size, const std::nothrow_t & /*tag*/) noexcept {
    try {
        return ::operator new(size);
    } catch (const std::bad_alloc &) {
        return nullptr;
    }
}
void *operator new[](std::size_t size, const std::nothrow_t &tag) noexcept {
    return ::operator new(size, tag);
}
void operator delete(void *p, const std::nothrow_t & /*tag*/) noexcept {
    std::free(p);
}
void operator delete[](void *p, const std::nothrow_t & /*tag*/) noexcept {
    std::free(p);
}
void operator delete(void *p) noexcept {
    std::free(p);
}
void operator delete[](void *p) noexcept {
    std::free(p);
}
void operator delete(void *p, std::size_t /*size*/) noexcept {
    std::free(p);
}
void operator delete[](void *p, std::size_t /*size*/) noexcept {
    std::free(p);
}
