/*
 * intellicache core: a host-wide budget shared by the caches of several
 * nodes (the intellicache-pool object).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_POOL_HPP
#define IC_POOL_HPP

#include <cstdint>
#include <mutex>
#include <vector>

namespace intellicache {

/*
 * Together, the member caches hold at most size() bytes.  Each member's
 * CacheBudget takes bytes from the pool when it reserves room for a store
 * and gives them back when that room is freed; what it holds when it joins
 * is counted at once, even beyond the pool's size.
 *
 * Eviction chooses across the members: when less than the headroom
 * (1/32 of the size, at most kMaxHeadroom) is free, victim() asks one
 * member to free enough to leave twice the headroom, and all that is held
 * beyond the size (its deficit: members that join or move in with what
 * they hold may exceed it), and says which one, so that the caller wakes
 * it.  The member asked is one whose policy says that what it stored
 * lately is seldom read again (set_reuse_low(); it also admits little
 * then), else the one that holds the most bytes: a member that streams
 * data nobody reads again must not push out another's working set, and
 * otherwise, with the members' policies apart, each share tends to an
 * equal part under pressure while a member that holds little keeps it.
 * (A global order of all members' clusters would be finer; it would need
 * one policy for all of them.)
 *
 * Locking: the only state of the core that nodes share, and nodes may run
 * in different threads, so it has its own lock (@lock_), held only inside
 * these methods.  Lock order: a node's lock, then the pool's; victim() is
 * called without a node's lock.
 */
class PoolBudget {
public:
    /* Never more than this is asked to be freed at once: 256 MiB. */
    static constexpr std::uint64_t kMaxHeadroom = std::uint64_t{256} << 20;

    explicit PoolBudget(std::uint64_t size) : size_(size) {}

    std::uint64_t size() const { return size_; }
    std::uint64_t used() const;
    std::size_t members() const;
    /*
     * Whether less than twice the headroom is free: what a freeing member
     * leaves, so a pool that evicts stays there and each store costs an
     * eviction.
     */
    bool tight() const;

    /*
     * Members are keyed by @key (a member's CacheBudget); @opaque is what
     * victim() returns for it (the glue's node).  Several keys may share
     * an opaque (a node whose core is being replaced).
     */
    void join(const void *key, void *opaque);
    /* @key leaves: its bytes are given back. */
    void leave(const void *key);

    /* Take @bytes for @key if they fit. */
    bool take(const void *key, std::uint64_t bytes);
    /* Count @bytes for @key whether they fit or not (what it holds). */
    void force(const void *key, std::uint64_t bytes);
    /* Give back @bytes of @key's; they pay off its deficit first. */
    void give(const void *key, std::uint64_t bytes);
    /* Bytes @key is asked to free. */
    std::uint64_t deficit(const void *key) const;
    /* Whether what @key stored lately is seldom read again (victim()). */
    void set_reuse_low(const void *key, bool low);

    /*
     * The opaque of the member that must free room now, asking one (see
     * the class comment) if no member is asked yet; nullptr while enough
     * is free (and then no member is asked any more).
     */
    void *victim();

private:
    struct Member {
        const void *key;
        void *opaque;
        std::uint64_t used;
        std::uint64_t deficit;
        bool reuse_low;
    };

    Member &member(const void *key);
    const Member &member(const void *key) const;
    std::uint64_t headroom() const;
    std::uint64_t free_bytes() const {
        return used_ < size_ ? size_ - used_ : 0;
    }

    const std::uint64_t size_;
    mutable std::mutex lock_;
    std::uint64_t used_ = 0;      /* under @lock_ */
    std::vector<Member> members_; /* under @lock_; few, so scanned */
};

} // namespace intellicache

#endif
