/*
 * intellicache core: spotting scans, whose data a bounded cache does not
 * keep.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_SCAN_FILTER_HPP
#define IC_SCAN_FILTER_HPP

#include <array>
#include <cstdint>

namespace intellicache {

/*
 * A read is part of a scan when it continues a sequential stream that has
 * covered at least the threshold: a backup, an antivirus sweep, a copy of
 * the whole disk.  Such data is read once; storing it would cost a write
 * and, in a full cache, the eviction of something that is read again.  A
 * bounded cache passes scans through (docs/design.rst, Admission).
 *
 * Streams are followed as by the read-ahead detector (a few at once, for
 * VMs that read side by side), but by length rather than by count of
 * reads.  A read that starts where a stream's last read ended continues
 * it; any other read starts a new stream in place of the least recently
 * used one, so a scan interrupted by a random read elsewhere goes on.
 */
class ScanFilter {
public:
    static constexpr unsigned kStreams = 4;

    /* @threshold: stream length from which reads are a scan (0: never). */
    explicit ScanFilter(std::uint64_t threshold = 0) : threshold_(threshold) {}

    void set_threshold(std::uint64_t threshold) { threshold_ = threshold; }
    std::uint64_t threshold() const { return threshold_; }

    /*
     * Note the user read [offset, offset + bytes); true if it is part of a
     * scan (its stream, this read included, covers the threshold).
     */
    bool note_read(std::uint64_t offset, std::uint64_t bytes);

    /*
     * Whether byte @offset was read by a stream that is a scan: a fetch
     * planned for a read just noted asks this of its first byte.
     */
    bool in_scan(std::uint64_t offset) const;

private:
    struct Stream {
        std::uint64_t next = 0;     /* where its next read starts */
        std::uint64_t length = 0;   /* bytes it covered */
        std::uint64_t last_use = 0; /* for LRU replacement */
        bool used = false;
    };

    std::uint64_t threshold_;
    std::uint64_t clock_ = 0;
    std::array<Stream, kStreams> streams_{};
};

} // namespace intellicache

#endif
