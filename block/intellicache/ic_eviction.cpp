/*
 * intellicache core: which cached clusters to keep when the cache is full.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_eviction.hpp"

#include "intellicache-core.h"

#include "ic_check.hpp"
#include "ic_message.hpp"

#include <algorithm>
#include <cinttypes>
#include <new>

/*
 * The state of every cluster of the base is 4 bits in one array: where it
 * is (none, small, main, ghost) and a 2-bit saturating count of the reads
 * that hit it since it entered its FIFO or was last passed over.  The three
 * FIFOs are rings of 32-bit indices.  So the policy needs no hash table and
 * no per-cluster pointers: a 1 TiB base at 64 KiB clusters (16 Mi clusters)
 * with a 100 GiB cache (1.6 Mi clusters) costs 8 MiB of states plus
 * 4 + 4 + 3.6 bytes of ring per cached cluster, about 16.7 bytes per cached
 * cluster in all (tests/unit/test_eviction.cpp checks the figure).
 *
 * Room: the small and the main ring each have room for the whole capacity
 * (while the cache fills, nothing is evicted and every new cluster stays in
 * small; after an open, load() puts everything in main), the ghost ring for
 * main's share of it (capacity less small's target).  The rings are sized
 * by create() and set_capacity(); load() beyond the capacity (a cache that
 * was filled under a larger cache-size) grows main's ring, doubling it, as
 * the only other allocation.
 *
 * Ghosts: a ghost's ring entry stays when the cluster leaves the ghosts
 * (inserted again), so the ring may hold stale entries, recognised when
 * they reach its head because the cluster is no longer a ghost.  One case
 * is not recognised: a cluster that left the ghosts, went through main,
 * was evicted from it and became a ghost again while its old entry was
 * still in the ring loses its new ghost state when the old entry reaches
 * the head, earlier than its new entry would have.  Its next miss then
 * enters small instead of main.  Telling the entries apart would take a
 * ring position or a generation per cluster, several times the 4 bits;
 * the case needs a full trip through main within one ghost ring's length.
 */

namespace intellicache {

namespace {

/* Where a cluster is: the low 2 bits of its state. */
constexpr std::uint8_t kNone = 0;
constexpr std::uint8_t kSmall = 1;
constexpr std::uint8_t kMain = 2;
constexpr std::uint8_t kGhost = 3;
constexpr std::uint8_t kWhereMask = 3;

/* The frequency: the high 2 bits, saturating at 3. */
constexpr unsigned kFreqShift = 2;
constexpr std::uint8_t kFreqOne = 1U << kFreqShift;
constexpr std::uint8_t kMaxFreq = 3;

constexpr std::uint8_t where(std::uint8_t state) {
    return state & kWhereMask;
}
constexpr std::uint8_t freq(std::uint8_t state) {
    return state >> kFreqShift;
}
constexpr std::uint8_t make_state(std::uint8_t where, std::uint8_t freq) {
    return static_cast<std::uint8_t>(where | (freq << kFreqShift));
}

/*
 * Admission (EvictionPolicy::admit()): the reuse of misses is measured over
 * about the last kReuseWindow clusters that entered or were refused; it is
 * low below one in kReuseShare, judged once kReuseMinSample are counted.  A
 * real working set (a boot set read twice, a Zipf-like mix, whose reuse
 * share is well above it) never turns admission on; uniform reads over a
 * base far larger than the cache come back as ghosts about as often as the
 * ghosts' share of the base, well below it.
 */
constexpr std::uint32_t kReuseWindow = 4096;
constexpr std::uint32_t kReuseMinSample = 512;
constexpr std::uint32_t kReuseShare = 16;

/* Small's share: 10% of the capacity, as in the paper, at least one. */
std::uint64_t small_target(std::uint64_t capacity) {
    return std::max<std::uint64_t>(1, capacity / 10);
}

/* Ghosts: as many as main holds when the cache is full. */
std::uint64_t ghost_target(std::uint64_t capacity) {
    return capacity - small_target(capacity);
}

/* Grows @ring to @slots if it has less room. */
void grow(ClusterRing &ring, std::uint64_t slots) {
    if (slots > ring.slots()) {
        ring.resize(slots);
    }
}

} // namespace

std::unique_ptr<EvictionPolicy>
EvictionPolicy::create(std::uint64_t cluster_count, std::uint64_t capacity,
                       MessageBuffer &why) {
    IC_CHECK(cluster_count <= IC_MAX_CLUSTER_COUNT,
             "eviction policy for %" PRIu64 " clusters", cluster_count);
    IC_CHECK(capacity >= 1, "eviction policy with a capacity of 0 clusters");
    /*
     * The state is sized by the user's base and cache-size: failing to
     * allocate it fails the open, it must not take the process down.
     */
    try {
        return std::unique_ptr<EvictionPolicy>(
            new EvictionPolicy(cluster_count, capacity));
    } catch (const std::bad_alloc &) {
        why.set("cannot allocate the eviction state of %" PRIu64
                " clusters with %" PRIu64 " of them cached",
                cluster_count, std::min(capacity, cluster_count));
        return nullptr;
    }
}

EvictionPolicy::EvictionPolicy(std::uint64_t cluster_count,
                               std::uint64_t capacity)
    : cluster_count_(cluster_count), capacity_(capacity),
      small_target_(small_target(capacity)),
      states_(static_cast<std::size_t>((cluster_count + 1) / 2), 0),
      small_(std::min(capacity, cluster_count)),
      main_(std::min(capacity, cluster_count)),
      ghost_(std::min(ghost_target(capacity), cluster_count)) {}

std::uint64_t EvictionPolicy::capacity() const {
    return capacity_;
}

void EvictionPolicy::set_capacity(std::uint64_t capacity) {
    IC_CHECK(capacity >= 1, "eviction policy with a capacity of 0 clusters");
    const std::uint64_t room = std::min(capacity, cluster_count_);
    /* Not below what the rings hold: the caller evicts down afterwards,
     * and clusters move from small to main meanwhile. */
    const std::uint64_t small_room = std::max(room, small_.size());
    const std::uint64_t main_room = std::max(room, resident());
    const std::uint64_t ghost_room =
        std::min(ghost_target(capacity), cluster_count_);
    /*
     * Grow, then take the new bound, then shrink: if an allocation fails
     * (std::bad_alloc), every ring still has room for what the capacity
     * in force allows, at worst more.
     */
    grow(small_, small_room);
    grow(main_, main_room);
    grow(ghost_, ghost_room);
    capacity_ = capacity;
    small_target_ = small_target(capacity);
    while (ghost_.size() > ghost_room) {
        forget(ghost_.pop());
    }
    small_.resize(small_room);
    main_.resize(main_room);
    ghost_.resize(ghost_room);
}

std::uint64_t EvictionPolicy::resident() const {
    return small_.size() + main_.size();
}

std::uint32_t EvictionPolicy::checked(std::uint64_t index,
                                      const char *call) const {
    IC_CHECK(index < cluster_count_,
             "eviction: %s() of cluster %" PRIu64 " of a base of %" PRIu64
             " clusters",
             call, index, cluster_count_);
    return static_cast<std::uint32_t>(index);
}

std::uint8_t EvictionPolicy::state(std::uint32_t index) const {
    return (states_[index / 2] >> ((index % 2) * 4)) & 0xFU;
}

void EvictionPolicy::set_state(std::uint32_t index, std::uint8_t state) {
    std::uint8_t &pair = states_[index / 2];
    const unsigned shift = (index % 2) * 4;
    pair = static_cast<std::uint8_t>((pair & ~(0xFU << shift)) |
                                     (unsigned{state} << shift));
}

void EvictionPolicy::insert(std::uint64_t index) {
    const std::uint32_t i = checked(index, "insert");
    const std::uint8_t w = where(state(i));
    IC_CHECK(w != kSmall && w != kMain,
             "eviction: insert() of cluster %" PRIu64 ", already cached",
             index);
    IC_CHECK(resident() < capacity_,
             "eviction: insert() with %" PRIu64 " of %" PRIu64
             " clusters cached: evict first",
             resident(), capacity_);
    /* resident() < min(capacity, cluster_count): both rings have room. */
    note_entry(w == kGhost);
    if (w == kGhost) {
        main_.push(i);
        set_state(i, make_state(kMain, 0));
    } else {
        small_.push(i);
        set_state(i, make_state(kSmall, 0));
    }
}

void EvictionPolicy::load(std::uint64_t index) {
    const std::uint32_t i = checked(index, "load");
    const std::uint8_t w = where(state(i));
    IC_CHECK(w != kSmall && w != kMain,
             "eviction: load() of cluster %" PRIu64 ", already cached", index);
    /*
     * Main's ring must have room for every cached cluster (evict_small()
     * moves them there): beyond the capacity, double it.  i is not cached,
     * so resident() < cluster_count_ and the new room is larger.
     */
    if (resident() >= main_.slots()) {
        main_.resize(std::min(cluster_count_,
                              std::max<std::uint64_t>(1, main_.slots() * 2)));
    }
    main_.push(i);
    set_state(i, make_state(kMain, 0));
}

void EvictionPolicy::touch(std::uint64_t index) {
    const std::uint32_t i = checked(index, "touch");
    const std::uint8_t s = state(i);
    const std::uint8_t w = where(s);
    if ((w == kSmall || w == kMain) && freq(s) < kMaxFreq) {
        if (w == kSmall && freq(s) == 0) {
            reused_++; /* its first read again since it entered */
        }
        set_state(i, static_cast<std::uint8_t>(s + kFreqOne));
    }
}

std::optional<std::uint64_t> EvictionPolicy::evict() {
    if (resident() == 0) {
        return std::nullopt;
    }
    /* The paper's rule: small while it holds its share, else main. */
    if (small_.size() >= small_target_ || main_.empty()) {
        if (const auto victim = evict_small()) {
            return *victim;
        }
    }
    return evict_main();
}

std::optional<std::uint32_t> EvictionPolicy::evict_small() {
    while (!small_.empty()) {
        const std::uint32_t i = small_.pop();
        if (freq(state(i)) > 0) {
            /* Read again while in small: worth keeping.  It starts in
             * main with no credit, as in the authors' implementation. */
            main_.push(i);
            set_state(i, make_state(kMain, 0));
        } else {
            remember(i);
            return i;
        }
    }
    return std::nullopt;
}

std::uint32_t EvictionPolicy::evict_main() {
    /* Each pass over a cluster takes one from its frequency, so this ends
     * within kMaxFreq + 1 rounds of main. */
    for (;;) {
        const std::uint32_t i = main_.pop();
        const std::uint8_t f = freq(state(i));
        if (f == 0) {
            set_state(i, make_state(kNone, 0));
            return i;
        }
        main_.push(i);
        set_state(i, make_state(kMain, static_cast<std::uint8_t>(f - 1)));
    }
}

void EvictionPolicy::remember(std::uint32_t index) {
    if (ghost_.slots() == 0) {
        set_state(index, make_state(kNone, 0));
        return;
    }
    if (ghost_.full()) {
        forget(ghost_.pop());
    }
    ghost_.push(index);
    set_state(index, make_state(kGhost, 0));
}

void EvictionPolicy::forget(std::uint32_t index) {
    /* A stale entry: the cluster was inserted again since (see above). */
    if (where(state(index)) == kGhost) {
        set_state(index, make_state(kNone, 0));
    }
}

void EvictionPolicy::note_entry(bool reused) {
    entered_++;
    reused_ += reused ? 1 : 0;
    if (entered_ >= kReuseWindow) {
        entered_ /= 2;
        reused_ /= 2;
    }
}

bool EvictionPolicy::reuse_low() const {
    return entered_ >= kReuseMinSample &&
           std::uint64_t{reused_} * kReuseShare < entered_;
}

bool EvictionPolicy::admit(std::uint64_t first, std::uint64_t count) {
    const std::uint32_t i = checked(first, "admit");
    IC_CHECK(count >= 1 && count <= cluster_count_ - first,
             "eviction: admit() of %" PRIu64 " clusters from %" PRIu64
             " of a base of %" PRIu64,
             count, first, cluster_count_);
    if (!reuse_low() || where(state(i)) == kGhost) {
        return true;
    }
    /*
     * A refused cluster counts as one that entered and was not read again:
     * if it is read again while a ghost, it enters then as reused.  So the
     * measure goes on with nothing stored but second reads, and rises as
     * soon as reads come back.
     */
    for (std::uint64_t c = first; c < first + count; c++) {
        const auto j = static_cast<std::uint32_t>(c);
        if (where(state(j)) == kNone) {
            remember(j);
        }
        note_entry(false);
    }
    return false;
}

std::uint64_t EvictionPolicy::memory_bytes() const {
    return sizeof(*this) + states_.capacity() + small_.memory_bytes() +
           main_.memory_bytes() + ghost_.memory_bytes();
}

} // namespace intellicache
