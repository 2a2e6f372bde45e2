/*
 * ic-cachesim: the workloads (built-in generators and trace files).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef CACHESIM_WORKLOAD_HPP
#define CACHESIM_WORKLOAD_HPP

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cachesim {

constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = 1024 * kKiB;
constexpr std::uint64_t kGiB = 1024 * kMiB;

/* "4096", "4K", "512M", "4G", "1T", "64KiB"; nullopt if not a size. */
std::optional<std::uint64_t> parse_size(const std::string &text);

/* "4 GiB", "512 MiB", "4 KiB", or bytes. */
std::string describe_size(std::uint64_t bytes);

/*
 * A deterministic PRNG: xoshiro256**, seeded by splitmix64.  Written out
 * rather than taken from <random>: the standard distributions differ
 * between library implementations, and a workload must be the same
 * everywhere for a seed.
 */
class Rng {
public:
    explicit Rng(std::uint64_t seed) {
        for (std::uint64_t &word : s_) {
            seed += 0x9E3779B97F4A7C15ULL;
            std::uint64_t z = seed;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
            word = z ^ (z >> 31);
        }
    }

    std::uint64_t next() {
        const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    /* Uniform in [0, 1), 53 bits. */
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

    /* Uniform in [0, n), n > 0, without modulo bias. */
    std::uint64_t below(std::uint64_t n) {
        const std::uint64_t reject = (0 - n) % n; /* 2^64 mod n */
        for (;;) {
            const std::uint64_t r = next();
            if (r >= reject) {
                return r % n;
            }
        }
    }

    /* Fisher-Yates. */
    template <typename T> void shuffle(std::vector<T> &v) {
        for (std::size_t i = v.size(); i > 1; i--) {
            std::swap(v[i - 1], v[static_cast<std::size_t>(below(i))]);
        }
    }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) {
        return (x << k) | (x >> (64 - k));
    }

    std::uint64_t s_[4]{};
};

struct Request {
    std::uint64_t offset;
    std::uint64_t bytes;
};

struct Workload {
    std::string name;        /* "zipf", "scan" or "trace" */
    std::string description; /* one line for the report */
    std::uint64_t base_size = 0;
    std::vector<Request> requests;
    /* Requests from this one on are also reported on their own (the last
     * pass of the scan workload); requests.size() if none. */
    std::size_t measured_from = 0;
    std::string measured_name;
};

/*
 * @requests 4 KiB reads, each of a cluster drawn from a Zipf distribution
 * of exponent @alpha over the clusters of the base (the cluster of rank k
 * with probability proportional to 1 / k^alpha), the ranks placed over the
 * address space by a seeded permutation.  With clusters larger than 4 KiB
 * the read is at a random 4 KiB block of the cluster.
 */
Workload zipf_workload(double alpha, std::uint64_t base_size,
                       std::uint64_t cluster_size, std::uint64_t requests,
                       std::uint64_t seed);

constexpr std::uint64_t kBootExtent = 64 * kKiB;
constexpr unsigned kHotReads = 4;

/*
 * A boot set read twice, then the whole base read sequentially, then the
 * boot set again: the last pass is what a policy should serve from the
 * cache (the scan is read once).  The boot set is in 64 KiB extents
 * scattered over the first quarter of the base (where a fresh install
 * puts the system's files), read in the same random order each time.
 * Optionally, while the scan runs, a working set (random 4 KiB blocks of
 * the base) is read too: 4 random reads of it after each scan read, as
 * VMs that keep running during a backup.
 */
struct ScanShape {
    std::uint64_t base_size;
    std::uint64_t boot_size;
    std::uint64_t scan_read; /* bytes per read of the scan */
    std::uint64_t hot_size;  /* of the working set, 0 for none */
    std::uint64_t seed;
};

Workload scan_workload(const ScanShape &shape);

/*
 * Reads of a trace file: fio's iolog version 2 or 3 (fio --write_iolog:
 * "filename read offset length", with a leading timestamp in version 3)
 * or "offset length" per line ('#' starts a comment).  Only reads count:
 * the cache serves a read-only base.
 */
bool load_trace(const std::string &path, const std::string &format, Workload &w,
                std::string &error);

} // namespace cachesim

#endif
