/*
 * ic-cachesim: a workload as a sequence of cluster reads, and the policies
 * that replay it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "cachesim_replay.hpp"

#include "ic_bitmap.hpp"

#include <algorithm>
#include <limits>
#include <queue>
#include <unordered_map>
#include <utility>

namespace cachesim {

Replay flatten(const Workload &w, std::uint64_t cluster_size) {
    Replay r;
    r.cluster_count = (w.base_size + cluster_size - 1) / cluster_size;
    std::unordered_map<std::uint32_t, std::uint32_t> ids;
    for (const Request &q : w.requests) {
        const std::uint64_t end = q.offset + q.bytes;
        for (std::uint64_t c = q.offset / cluster_size; c * cluster_size < end;
             c++) {
            const std::uint64_t from = std::max(q.offset, c * cluster_size);
            const std::uint64_t to = std::min(end, (c + 1) * cluster_size);
            const auto c32 = static_cast<std::uint32_t>(c);
            const auto [it, added] =
                ids.try_emplace(c32, static_cast<std::uint32_t>(ids.size()));
            r.cluster.push_back(c32);
            r.dense.push_back(it->second);
            r.bytes.push_back(static_cast<std::uint32_t>(to - from));
        }
        r.request_end.push_back(r.cluster.size());
    }
    r.distinct = ids.size();
    return r;
}

namespace {

class S3FifoCache : public SimCache {
public:
    S3FifoCache(const Replay &r,
                std::unique_ptr<intellicache::EvictionPolicy> p,
                bool repeat_touch)
        : r_(r), policy_(std::move(p)), present_(r.cluster_count),
          repeat_touch_(repeat_touch) {}

    bool access(std::size_t pos) override {
        const std::uint32_t c = r_.cluster[pos];
        const bool repeat = pos > 0 && r_.cluster[pos - 1] == c;
        if (present_.test(c)) {
            if (repeat_touch_ || !repeat) {
                policy_->touch(c);
            }
            return true;
        }
        if (policy_->resident() >= policy_->capacity()) {
            /* Full: admission first, as the node's budget asks it. */
            if (!policy_->admit(c, 1)) {
                return false;
            }
            present_.clear(*policy_->evict());
        }
        policy_->insert(c);
        present_.set(c);
        return false;
    }

private:
    const Replay &r_;
    std::unique_ptr<intellicache::EvictionPolicy> policy_;
    intellicache::ClusterBitmap present_;
    bool repeat_touch_;
};

constexpr std::uint32_t kNil = std::numeric_limits<std::uint32_t>::max();

/* A doubly linked list over the dense ids, newest at the head. */
class IdList {
public:
    explicit IdList(std::size_t ids) : prev_(ids, kNil), next_(ids, kNil) {}

    std::uint32_t head() const { return head_; }
    std::uint32_t tail() const { return tail_; }
    /* Towards the head (newer), kNil at the head. */
    std::uint32_t newer(std::uint32_t id) const { return prev_[id]; }

    void push_head(std::uint32_t id) {
        prev_[id] = kNil;
        next_[id] = head_;
        if (head_ != kNil) {
            prev_[head_] = id;
        }
        head_ = id;
        if (tail_ == kNil) {
            tail_ = id;
        }
    }

    void unlink(std::uint32_t id) {
        if (prev_[id] != kNil) {
            next_[prev_[id]] = next_[id];
        } else {
            head_ = next_[id];
        }
        if (next_[id] != kNil) {
            prev_[next_[id]] = prev_[id];
        } else {
            tail_ = prev_[id];
        }
        prev_[id] = next_[id] = kNil;
    }

private:
    std::vector<std::uint32_t> prev_;
    std::vector<std::uint32_t> next_;
    std::uint32_t head_ = kNil;
    std::uint32_t tail_ = kNil;
};

/* LRU and FIFO: evict the tail; LRU moves a hit to the head. */
class ListCache : public SimCache {
public:
    ListCache(const Replay &r, std::uint64_t capacity, bool lru)
        : r_(r), capacity_(capacity), lru_(lru), list_(r.distinct),
          cached_(r.distinct, 0) {}

    bool access(std::size_t pos) override {
        const std::uint32_t id = r_.dense[pos];
        if (cached_[id] != 0) {
            if (lru_) {
                list_.unlink(id);
                list_.push_head(id);
            }
            return true;
        }
        if (size_ >= capacity_) {
            const std::uint32_t victim = list_.tail();
            list_.unlink(victim);
            cached_[victim] = 0;
            size_--;
        }
        list_.push_head(id);
        cached_[id] = 1;
        size_++;
        return false;
    }

private:
    const Replay &r_;
    std::uint64_t capacity_;
    bool lru_;
    IdList list_;
    std::vector<std::uint8_t> cached_;
    std::uint64_t size_ = 0;
};

/*
 * SIEVE (Zhang et al., NSDI 2024): a FIFO with a visited bit per entry and
 * a hand that moves from the oldest entry towards the newest, clearing
 * visited bits, and evicts the first unvisited entry it finds; new entries
 * go to the head, survivors stay in place.
 */
class SieveCache : public SimCache {
public:
    SieveCache(const Replay &r, std::uint64_t capacity)
        : r_(r), capacity_(capacity), list_(r.distinct), state_(r.distinct, 0) {
    }

    bool access(std::size_t pos) override {
        const std::uint32_t id = r_.dense[pos];
        if (state_[id] != 0) {
            state_[id] = kVisited;
            return true;
        }
        if (size_ >= capacity_) {
            evict();
        }
        list_.push_head(id);
        state_[id] = kCached;
        size_++;
        return false;
    }

private:
    static constexpr std::uint8_t kCached = 1;
    static constexpr std::uint8_t kVisited = 2;

    void evict() {
        std::uint32_t id = hand_ != kNil ? hand_ : list_.tail();
        while (state_[id] == kVisited) {
            state_[id] = kCached;
            id = list_.newer(id) != kNil ? list_.newer(id) : list_.tail();
        }
        hand_ = list_.newer(id);
        list_.unlink(id);
        state_[id] = 0;
        size_--;
    }

    const Replay &r_;
    std::uint64_t capacity_;
    IdList list_;
    std::vector<std::uint8_t> state_;
    std::uint64_t size_ = 0;
    std::uint32_t hand_ = kNil;
};

/*
 * Belady's MIN: on a miss with the cache full, evict the cluster whose
 * next read is furthest in the future (never read again first), or, if
 * the missed cluster itself is read again no sooner, do not store it.
 * The optimum for a cache that may refuse a miss, as the node's admission
 * does (without that choice it would only be the optimum of caches that
 * store every miss).  A max-heap of (next read, id) with stale entries
 * skipped when they surface.
 */
class MinCache : public SimCache {
public:
    MinCache(const Replay &r, std::uint64_t capacity, bool store_every_miss)
        : r_(r), capacity_(capacity), store_every_miss_(store_every_miss),
          next_use_(r.dense.size()),
          next_of_(r.distinct, kNever), cached_(r.distinct, 0) {
        std::vector<std::size_t> seen(r.distinct, kNever);
        for (std::size_t pos = r.dense.size(); pos-- > 0;) {
            next_use_[pos] = seen[r.dense[pos]];
            seen[r.dense[pos]] = pos;
        }
    }

    bool access(std::size_t pos) override {
        const std::uint32_t id = r_.dense[pos];
        const bool hit = cached_[id] != 0;
        if (!hit && size_ >= capacity_) {
            /* Not stored if it is read again no sooner than any other. */
            if (!store_every_miss_ && next_use_[pos] >= furthest()) {
                return false;
            }
            furthest(); /* the top is now the victim */
            const std::uint32_t victim = heap_.top().second;
            heap_.pop();
            cached_[victim] = 0;
            size_--;
        }
        if (!hit) {
            cached_[id] = 1;
            size_++;
        }
        next_of_[id] = next_use_[pos];
        heap_.emplace(next_use_[pos], id);
        return hit;
    }

private:
    static constexpr std::size_t kNever =
        std::numeric_limits<std::size_t>::max();

    /* The next read of the cached cluster read last, stale entries gone. */
    std::size_t furthest() {
        for (;;) {
            const auto [next, id] = heap_.top();
            if (cached_[id] != 0 && next_of_[id] == next) {
                return next;
            }
            heap_.pop();
        }
    }

    const Replay &r_;
    std::uint64_t capacity_;
    bool store_every_miss_;
    std::vector<std::size_t> next_use_; /* per read: the next of its id */
    std::vector<std::size_t> next_of_;  /* per id: its next read */
    std::vector<std::uint8_t> cached_;
    std::uint64_t size_ = 0;
    std::priority_queue<std::pair<std::size_t, std::uint32_t>> heap_;
};

} // namespace

std::unique_ptr<SimCache>
make_s3fifo(const Replay &r, std::unique_ptr<intellicache::EvictionPolicy> p,
            bool repeat_touch) {
    return std::make_unique<S3FifoCache>(r, std::move(p), repeat_touch);
}

std::unique_ptr<SimCache> make_lru(const Replay &r, std::uint64_t capacity) {
    return std::make_unique<ListCache>(r, capacity, true);
}

std::unique_ptr<SimCache> make_fifo(const Replay &r, std::uint64_t capacity) {
    return std::make_unique<ListCache>(r, capacity, false);
}

std::unique_ptr<SimCache> make_sieve(const Replay &r, std::uint64_t capacity) {
    return std::make_unique<SieveCache>(r, capacity);
}

std::unique_ptr<SimCache> make_min(const Replay &r, std::uint64_t capacity,
                                   bool store_every_miss) {
    return std::make_unique<MinCache>(r, capacity, store_every_miss);
}

PolicyResult replay(const std::string &name, SimCache &cache, const Replay &r,
                    std::size_t measured_from) {
    PolicyResult res;
    res.name = name;
    std::size_t pos = 0;
    for (std::size_t q = 0; q < r.request_end.size(); q++) {
        bool all_hit = true;
        std::uint64_t bytes = 0;
        std::uint64_t hit_bytes = 0;
        for (; pos < r.request_end[q]; pos++) {
            const bool hit = cache.access(pos);
            all_hit = all_hit && hit;
            bytes += r.bytes[pos];
            hit_bytes += hit ? r.bytes[pos] : 0;
        }
        res.all.add(all_hit, bytes, hit_bytes);
        if (q >= measured_from) {
            res.measured.add(all_hit, bytes, hit_bytes);
        }
    }
    return res;
}

} // namespace cachesim
