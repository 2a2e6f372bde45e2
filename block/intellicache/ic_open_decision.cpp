/*
 * intellicache core: what to do with a cache file at open.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_open_decision.hpp"

namespace intellicache {

IcOpenAction OpenDecision::decide(IcHeaderStatus status, bool base_readable,
                                  bool writable) {
    switch (status) {
    case IC_HEADER_OK:
        return IC_OPEN_USE;
    case IC_HEADER_FOREIGN:
        return IC_OPEN_REFUSE;
    case IC_HEADER_FINGERPRINT:
        if (!base_readable) {
            return IC_OPEN_USE; /* shown as recorded */
        }
        break;
    case IC_HEADER_EMPTY:
        return writable ? IC_OPEN_FORMAT : IC_OPEN_EMPTY;
    case IC_HEADER_TRUNCATED:
    case IC_HEADER_CORRUPT:
    case IC_HEADER_VERSION:
    case IC_HEADER_CLUSTER_SIZE:
    case IC_HEADER_BASE_SIZE:
        break;
    default:
        return IC_OPEN_REFUSE;
    }
    return writable ? IC_OPEN_RESET : IC_OPEN_EMPTY;
}

IcOpenAction OpenDecision::decide_without_base(IcHeaderStatus status) {
    return status == IC_HEADER_OK ? IC_OPEN_USE : IC_OPEN_REFUSE;
}

} // namespace intellicache
