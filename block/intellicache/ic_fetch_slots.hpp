/*
 * intellicache core: the max-inflight slots for base reads.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_FETCH_SLOTS_HPP
#define IC_FETCH_SLOTS_HPP

#include "intellicache-core.h"

#include <cstdint>

namespace intellicache {

/*
 * Counts the base reads in flight (busy) against max-inflight (limit), and
 * the demand reads waiting for a slot.  The glue does the waiting (a queue
 * of coroutines, woken in order); this decides who may go.
 *
 *  - A demand read takes a free slot, or is counted as waiting.
 *  - Giving a slot back wakes one waiter, but only if a slot is then free
 *    (after the limit was lowered, busy may stay above it for a while: a
 *    waiter woken then would only fail again).  The waiter is no longer
 *    counted until it tries again.  So while anyone waits, every slot given
 *    back below the limit wakes one: no waiter is forgotten.
 *  - Read-ahead takes a slot only while fewer than half of them are busy
 *    and no demand read waits, and never waits: it must never take queue
 *    depth from a guest read that needs it now.  With a limit of 1 there is
 *    no read-ahead at all.
 *  - Prefetch (the prefetch job) takes a slot only while no demand read
 *    waits and a quarter of the slots (at least one with a limit of 2 or
 *    more) stays free, and never waits: guest misses that come while the
 *    job runs find a slot at once.  With a limit of 1 it may take the one
 *    slot when it is free (else the job could never run); a miss then
 *    waits for at most that one fetch.
 *  - Guests first: while guests miss (one did within IC_GUEST_QUIET_MS),
 *    prefetch takes a slot only when none is busy: a guest's miss then
 *    finds at most one prefetch ahead of it on the base's connection.
 *    The slots alone cannot give that: the base serves one connection in
 *    order, so a miss waits for the bytes queued before it, free slot or
 *    not.
 *  - A lower limit takes effect as slots come back (reads in flight are not
 *    recalled); a higher one at once for new reads, and for waiters as
 *    slots are given back.
 *
 * A new demand read may take a slot freed for a woken waiter before the
 * waiter tries again; the waiter then waits again and is woken by the next
 * slot given back.  (QEMU runs a woken coroutine before it takes new
 * requests, so this hardly happens; the counts stay exact either way.)
 */
class FetchSlots {
public:
    explicit FetchSlots(std::uint32_t limit) : limit_(limit) {}

    /* ic_core_slot_take(). */
    bool take(IcFetchKind kind);
    /* ic_core_note_guest_miss(). */
    void note_guest_miss(std::uint64_t now_ms) {
        guest_miss_ms_ = now_ms;
        guests_seen_ = true;
    }
    /* Whether a guest missed within IC_GUEST_QUIET_MS before @now_ms. */
    bool guests_active(std::uint64_t now_ms) const {
        return guests_seen_ && now_ms - guest_miss_ms_ < IC_GUEST_QUIET_MS;
    }
    /* The slot half of ic_core_prefetch_slot_take(). */
    bool take_prefetch(std::uint64_t now_ms);
    /* ic_core_slot_put(): true if one waiter must be woken. */
    bool put();
    void set_limit(std::uint32_t limit) { limit_ = limit; }

    std::uint32_t busy() const { return busy_; }
    std::uint32_t waiting() const { return waiting_; }
    /* Slots prefetch may hold at most under the current limit. */
    std::uint32_t prefetch_limit() const;

private:
    std::uint32_t limit_;
    std::uint32_t busy_ = 0;
    std::uint32_t waiting_ = 0;
    std::uint64_t guest_miss_ms_ = 0; /* of the last guest miss */
    bool guests_seen_ = false;
};

} // namespace intellicache

#endif
