/*
 * ic-cachesim: the workloads (built-in generators and trace files).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "cachesim_workload.hpp"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

namespace cachesim {

std::optional<std::uint64_t> parse_size(const std::string &text) {
    if (text.empty() || text[0] == '-') {
        return std::nullopt;
    }
    char *end = nullptr;
    errno = 0;
    const unsigned long long n = std::strtoull(text.c_str(), &end, 10);
    if (errno != 0 || end == text.c_str()) {
        return std::nullopt;
    }
    std::string unit(end);
    for (const char *suffix : {"iB", "B"}) {
        const std::size_t len = std::strlen(suffix);
        if (unit.size() > len &&
            unit.compare(unit.size() - len, len, suffix) == 0) {
            unit.resize(unit.size() - len);
            break;
        }
    }
    unsigned shift = 0;
    if (unit.empty()) {
        shift = 0;
    } else if (unit == "K" || unit == "k") {
        shift = 10;
    } else if (unit == "M") {
        shift = 20;
    } else if (unit == "G") {
        shift = 30;
    } else if (unit == "T") {
        shift = 40;
    } else {
        return std::nullopt;
    }
    if (n > (std::numeric_limits<std::uint64_t>::max() >> shift)) {
        return std::nullopt;
    }
    return std::uint64_t{n} << shift;
}

std::string describe_size(std::uint64_t bytes) {
    char buf[48];
    if (bytes >= kGiB && bytes % kGiB == 0) {
        std::snprintf(buf, sizeof(buf), "%" PRIu64 " GiB", bytes / kGiB);
    } else if (bytes >= kMiB && bytes % kMiB == 0) {
        std::snprintf(buf, sizeof(buf), "%" PRIu64 " MiB", bytes / kMiB);
    } else if (bytes >= kKiB && bytes % kKiB == 0) {
        std::snprintf(buf, sizeof(buf), "%" PRIu64 " KiB", bytes / kKiB);
    } else {
        std::snprintf(buf, sizeof(buf), "%" PRIu64 " bytes", bytes);
    }
    return buf;
}

Workload zipf_workload(double alpha, std::uint64_t base_size,
                       std::uint64_t cluster_size, std::uint64_t requests,
                       std::uint64_t seed) {
    Workload w;
    w.name = "zipf";
    const std::uint64_t clusters = base_size / cluster_size;
    char text[200];
    std::snprintf(text, sizeof(text),
                  "Zipf(%.2f) over the %" PRIu64 " clusters of %s, %" PRIu64
                  " random 4 KiB reads, seed %" PRIu64,
                  alpha, clusters, describe_size(base_size).c_str(), requests,
                  seed);
    w.description = text;
    w.base_size = clusters * cluster_size;

    /* The distribution function, to draw ranks by binary search. */
    std::vector<double> cdf(static_cast<std::size_t>(clusters));
    double sum = 0;
    for (std::size_t k = 0; k < cdf.size(); k++) {
        sum += 1.0 / std::pow(static_cast<double>(k + 1), alpha);
        cdf[k] = sum;
    }
    Rng rng(seed);
    std::vector<std::uint32_t> place(static_cast<std::size_t>(clusters));
    for (std::size_t k = 0; k < place.size(); k++) {
        place[k] = static_cast<std::uint32_t>(k);
    }
    rng.shuffle(place);

    const std::uint64_t blocks_per_cluster = cluster_size / (4 * kKiB);
    w.requests.reserve(static_cast<std::size_t>(requests));
    for (std::uint64_t i = 0; i < requests; i++) {
        const double u = rng.uniform() * sum;
        auto rank = static_cast<std::size_t>(
            std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
        rank = std::min(rank, cdf.size() - 1);
        const std::uint64_t block =
            blocks_per_cluster > 1 ? rng.below(blocks_per_cluster) : 0;
        w.requests.push_back(
            {place[rank] * cluster_size + block * 4 * kKiB, 4 * kKiB});
    }
    w.measured_from = w.requests.size();
    return w;
}

Workload scan_workload(const ScanShape &shape) {
    Workload w;
    w.name = "scan";
    char text[300];
    std::snprintf(text, sizeof(text),
                  "boot set of %s read twice, the %s base read once "
                  "sequentially (%s reads), the boot set again",
                  describe_size(shape.boot_size).c_str(),
                  describe_size(shape.base_size).c_str(),
                  describe_size(shape.scan_read).c_str());
    w.description = text;
    if (shape.hot_size != 0) {
        std::snprintf(text, sizeof(text),
                      "; a %s working set read during the scan",
                      describe_size(shape.hot_size).c_str());
        w.description += text;
    }
    std::snprintf(text, sizeof(text), "; seed %" PRIu64, shape.seed);
    w.description += text;
    w.base_size = shape.base_size;

    Rng rng(shape.seed);
    std::vector<std::uint64_t> slots(
        static_cast<std::size_t>(shape.base_size / 4 / kBootExtent));
    for (std::size_t i = 0; i < slots.size(); i++) {
        slots[i] = i * kBootExtent;
    }
    rng.shuffle(slots);
    slots.resize(static_cast<std::size_t>(shape.boot_size / kBootExtent));

    auto boot_pass = [&] {
        for (const std::uint64_t offset : slots) {
            w.requests.push_back({offset, kBootExtent});
        }
    };
    boot_pass();
    boot_pass();
    std::vector<std::uint64_t> hot(
        static_cast<std::size_t>(shape.hot_size / (4 * kKiB)));
    std::generate(hot.begin(), hot.end(), [&] {
        return rng.below(shape.base_size / (4 * kKiB)) * 4 * kKiB;
    });
    for (std::uint64_t offset = 0; offset < shape.base_size;
         offset += shape.scan_read) {
        w.requests.push_back(
            {offset, std::min(shape.scan_read, shape.base_size - offset)});
        for (unsigned i = 0; i < kHotReads && !hot.empty(); i++) {
            w.requests.push_back(
                {hot[static_cast<std::size_t>(rng.below(hot.size()))],
                 4 * kKiB});
        }
    }
    w.measured_from = w.requests.size();
    w.measured_name = "last pass";
    boot_pass();
    return w;
}

bool load_trace(const std::string &path, const std::string &format, Workload &w,
                std::string &error) {
    std::ifstream in(path);
    if (!in) {
        error = "cannot open " + path + ": " + std::strerror(errno);
        return false;
    }
    w.name = "trace";
    std::string line;
    std::string kind = format;
    int fio_version = 0;
    std::string read_file;
    std::uint64_t skipped = 0;
    std::uint64_t line_no = 0;
    while (std::getline(in, line)) {
        line_no++;
        if (const std::size_t hash = line.find('#');
            hash != std::string::npos && kind != "fio") {
            line.resize(hash);
        }
        std::istringstream fields(line);
        std::vector<std::string> tok;
        for (std::string t; fields >> t;) {
            tok.push_back(t);
        }
        if (tok.empty()) {
            continue;
        }
        if (kind == "auto") {
            kind = tok[0] == "fio" ? "fio" : "plain";
        }
        auto number = [&](const std::string &s, std::uint64_t &out) {
            char *end = nullptr;
            errno = 0;
            out = std::strtoull(s.c_str(), &end, 0);
            return errno == 0 && end != s.c_str() && *end == '\0' &&
                   s[0] != '-';
        };
        Request r{};
        if (kind == "fio") {
            if (fio_version == 0) {
                if (tok.size() != 4 || tok[0] != "fio" || tok[1] != "version" ||
                    tok[3] != "iolog" || (tok[2] != "2" && tok[2] != "3")) {
                    error = path + ": not a fio iolog of version 2 or 3";
                    return false;
                }
                fio_version = tok[2][0] - '0';
                continue;
            }
            /* Version 3 lines start with a timestamp. */
            const std::size_t first = fio_version == 3 ? 1 : 0;
            if (tok.size() < first + 4 || tok[first + 1] != "read") {
                skipped++; /* add, open, close, write, trim, sync, wait */
                continue;
            }
            if (read_file.empty()) {
                read_file = tok[first];
            } else if (tok[first] != read_file) {
                error = path;
                error += ": reads of " + read_file;
                error += " and of " + tok[first];
                error += ": the simulator models one base, split the trace";
                return false;
            }
            if (!number(tok[first + 2], r.offset) ||
                !number(tok[first + 3], r.bytes)) {
                error = path + ":" + std::to_string(line_no) +
                        ": bad offset or length";
                return false;
            }
        } else {
            if (tok.size() != 2 || !number(tok[0], r.offset) ||
                !number(tok[1], r.bytes)) {
                error = path + ":" + std::to_string(line_no) +
                        ": expected \"offset length\"";
                return false;
            }
        }
        if (r.bytes == 0) {
            continue;
        }
        if (r.offset + r.bytes < r.offset) {
            error = path + ":" + std::to_string(line_no) + ": beyond 2^64";
            return false;
        }
        w.requests.push_back(r);
        w.base_size = std::max(w.base_size, r.offset + r.bytes);
    }
    if (kind == "fio" && fio_version == 0) {
        error = path + ": empty fio iolog";
        return false;
    }
    char text[300];
    std::snprintf(text, sizeof(text), "%s (%s): %zu reads", path.c_str(),
                  kind == "fio" ? "fio iolog" : "offset length",
                  w.requests.size());
    w.description = text;
    if (skipped != 0) {
        w.description +=
            ", " + std::to_string(skipped) + " other entries ignored";
    }
    w.measured_from = w.requests.size();
    return true;
}

} // namespace cachesim
