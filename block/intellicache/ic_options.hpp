/*
 * intellicache core: the node's options, checked and completed.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_OPTIONS_HPP
#define IC_OPTIONS_HPP

#include "intellicache-core.h"

#include <cstdint>

namespace intellicache {

class MessageBuffer;

/*
 * The options as the user gave them (IcOptions), and the two steps that
 * turn them into the settings in effect (IcSettings):
 *
 *  check():   each option on its own, before the cache file is looked at:
 *             ranges and shapes that do not depend on the cluster size.
 *  resolve(): once the cluster size is known (the user's, the existing
 *             cache's or the default): defaults that depend on it, and the
 *             checks that combine options.
 *
 * Every refusal names the option and what is accepted, so the user can fix
 * the command line from the message alone.
 */
class Options {
public:
    explicit Options(const IcOptions &opts) : opts_(opts) {}

    /*
     * Fills @out with the given values and the defaults that do not depend
     * on the cluster size; cluster_size, and max_fetch and read_ahead when
     * not given, stay 0 until resolve().  False (and a message) if an
     * option is out of range.
     */
    bool check(IcSettings &out, MessageBuffer &why) const;

    /*
     * check(), then completes @set for @cluster_size.  Idempotent: @set is
     * recomputed from the options, so it may be resolved again for another
     * cluster size.
     */
    bool resolve(IcSettings &set, std::uint32_t cluster_size,
                 MessageBuffer &why) const;

private:
    IcOptions opts_;
};

} // namespace intellicache

#endif
