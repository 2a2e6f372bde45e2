/*
 * intellicache core: the health of the base, and when a miss is retried.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_BASE_HEALTH_HPP
#define IC_BASE_HEALTH_HPP

#include "intellicache-core.h"

#include <cstdint>
#include <optional>

namespace intellicache {

/*
 * Whether the base answers, as the node's reads of it tell (IcBaseState):
 *
 *   UP        the last base read that ended succeeded
 *   RETRYING  a base read failed with an error that may pass, or has not
 *             answered for IC_BASE_SLOW_MS: misses are being retried
 *   DOWN      a miss waited its whole miss-timeout: new misses fail at once
 *             and a probe reads the base every IC_PROBE_INTERVAL_MS
 *
 * Any successful base read (a fetch, a probe, even one that answers long
 * after its reader gave up) means the base is back: UP, from any state.
 * Errors that cannot pass (ic_base_error_transient() false) are answers
 * too, and change nothing: the base is there, the read is wrong.
 *
 * Only a miss that waited miss-timeout makes the base DOWN: failures alone
 * leave it RETRYING however many there are, because a miss retried within
 * its deadline is exactly what RETRYING means.
 */
class BaseHealth {
public:
    explicit BaseHealth(IcBaseState initial = IC_BASE_UP) : state_(initial) {}

    IcBaseState state() const { return state_; }

    /* Apply @ev: true if the state changed (the glue emits an event). */
    bool note(IcBaseEvent ev);

    /*
     * Whether a new miss fails at once rather than fetching: while DOWN,
     * unless miss-timeout is 0 (misses then behave as if there were no
     * health: a base read is issued and its error returned).
     */
    bool fails_fast(std::uint64_t miss_timeout_ms) const;

    /*
     * The health timer fired at @now_ms.  @oldest_pending_ms: when the
     * oldest base read still pending was issued (nullopt: none pending).
     * Says whether that read is slow (pending IC_BASE_SLOW_MS: the glue
     * notes READ_SLOW), and whether to start a probe (DOWN, nothing
     * pending, no probe running, none started in the last
     * IC_PROBE_INTERVAL_MS).
     */
    IcHealthTick tick(std::uint64_t now_ms,
                      std::optional<std::uint64_t> oldest_pending_ms,
                      bool probe_running) const;
    /* A probe the tick asked for started at @now_ms. */
    void probe_started(std::uint64_t now_ms) { last_probe_ms_ = now_ms; }

    /* Whether the health timer is needed at all. */
    static bool timer_needed(IcBaseState state, bool reads_pending) {
        return state != IC_BASE_UP || reads_pending;
    }

private:
    IcBaseState state_;
    /* When the last probe started; none yet while unset. */
    std::optional<std::uint64_t> last_probe_ms_;
};

/*
 * When a miss whose base read failed is tried again (ic_miss_retry()).
 * Errors that may pass are retried after 100 ms, 200 ms, 400 ms, ...,
 * at most IC_RETRY_MAX_MS apart, so a base that comes back is used within
 * a second, and the last delay ends at the miss's deadline.
 */
class RetryPolicy {
public:
    /* @err: positive errno. */
    static bool transient(int err);

    /*
     * The delay before try @attempt + 1 after try @attempt (from 1) failed
     * with @err, @waited_ms into a miss with @timeout_ms to wait in all; or
     * nullopt: fail the miss now.
     */
    static std::optional<std::uint64_t> delay_ms(int err, unsigned attempt,
                                                 std::uint64_t waited_ms,
                                                 std::uint64_t timeout_ms);
};

} // namespace intellicache

#endif
