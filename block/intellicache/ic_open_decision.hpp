/*
 * intellicache core: what to do with a cache file at open.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_OPEN_DECISION_HPP
#define IC_OPEN_DECISION_HPP

#include "intellicache-core.h"

namespace intellicache {

/*
 * Maps the header check of a cache file to an action (ic_open_decide()).
 * The rules, in order:
 *
 *  - FOREIGN: refuse, whatever else holds.  It is somebody's data.
 *  - OK, or FINGERPRINT when the base could not be read (the mismatch
 *    cannot be told, since the expected fingerprint is unknown): use it.
 *  - Anything else would be (re)formatted: EMPTY formats, a stale or
 *    damaged cache is reset.  When the file may not be written now, start
 *    empty in memory instead and write nothing.
 *
 * An unknown status is refused: when in doubt, never overwrite.
 */
class OpenDecision {
public:
    static IcOpenAction decide(IcHeaderStatus status, bool base_readable,
                               bool writable);
    /* Without the base: only a valid cache is used, nothing is written. */
    static IcOpenAction decide_without_base(IcHeaderStatus status);
};

} // namespace intellicache

#endif
