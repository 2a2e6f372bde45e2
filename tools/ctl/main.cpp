/*
 * intellicache-ctl: look into intellicache nodes and cache files.
 *
 * Every failure ends as one line on standard error and exit status 2
 * (verify's mismatches: 1).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "args.hpp"
#include "commands.hpp"

#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#ifndef ICCTL_VERSION
#define ICCTL_VERSION "unknown"
#endif

int main(int argc, char **argv) {
    using namespace icctl;
    std::vector<std::string> args(argv + 1, argv + argc);
    try {
        const Invocation inv =
            ArgParser::parse(args, std::getenv("INTELLICACHE_QMP"));
        if (inv.version && !inv.help) {
            std::cout << "intellicache-ctl " << ICCTL_VERSION << "\n";
            return kExitOk;
        }
        if (inv.help) {
            std::cout << ArgParser::usage(inv.command);
            return kExitOk;
        }
        const int status = run_command(inv, std::cout);
        std::cout.flush();
        if (!std::cout) {
            std::cerr << "intellicache-ctl: cannot write the output\n";
            return kExitError;
        }
        return status;
    } catch (const std::exception &e) {
        std::cout.flush();
        std::cerr << "intellicache-ctl: " << e.what() << "\n";
        return kExitError;
    } catch (...) {
        std::cerr << "intellicache-ctl: unexpected error\n";
        return kExitError;
    }
}
