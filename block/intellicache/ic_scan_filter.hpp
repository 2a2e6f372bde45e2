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
 * A sequential reader keeps many requests in flight (nbdcopy: 64 per
 * connection), and they reach the node out of order (the NBD server asks
 * for block status before each read, which may wait for the base).  So a
 * read continues a stream if it lands within kSlack of the stream's front
 * (the furthest end read so far) rather than exactly at it.  Scattered
 * reads over a small region (a boot) land near some front too, but most
 * of them behind it or far ahead of it; what tells a scan is that the
 * reads that move its front forward cover most of the ground they pass:
 * a stream is a scan once its span reaches the threshold and those reads
 * covered at least a quarter of it.
 *
 * A few streams are followed at once (VMs read side by side, a copy uses
 * several connections); a read that continues none starts a new stream in
 * place of the least recently used one.
 */
class ScanFilter {
public:
    static constexpr unsigned kStreams = 8;
    static constexpr std::uint64_t kSlack = std::uint64_t{2} << 20;

    /* @threshold: stream length from which reads are a scan (0: never). */
    explicit ScanFilter(std::uint64_t threshold = 0) : threshold_(threshold) {}

    void set_threshold(std::uint64_t threshold) { threshold_ = threshold; }
    std::uint64_t threshold() const { return threshold_; }

    /*
     * Note the user read [offset, offset + bytes); true if it is part of a
     * scan (its stream, this read included, is one).
     */
    bool note_read(std::uint64_t offset, std::uint64_t bytes);

    /*
     * Whether byte @offset was read by a stream that is a scan: a fetch
     * planned for a read just noted asks this of its first byte.
     */
    bool in_scan(std::uint64_t offset) const;

private:
    struct Stream {
        std::uint64_t start = 0;    /* where it began */
        std::uint64_t front = 0;    /* the furthest end read */
        std::uint64_t forward = 0;  /* bytes of reads that moved @front */
        std::uint64_t last_use = 0; /* for LRU replacement */
        bool used = false;
    };

    bool is_scan(const Stream &s) const;

    std::uint64_t threshold_;
    std::uint64_t clock_ = 0;
    std::array<Stream, kStreams> streams_{};
};

} // namespace intellicache

#endif
