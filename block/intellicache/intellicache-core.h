/*
 * intellicache core: the C interface between QEMU's block driver glue
 * (block/intellicache.c) and the C++ core in this directory.
 *
 * The core is pure logic: it knows nothing about QEMU, coroutines or I/O.
 * It decides what a read needs (hits, new fetches, waits on fetches already
 * in flight), keeps the cluster state, and encodes/decodes the on-disk
 * metadata.  The glue does all I/O and all waiting.
 *
 * The core is not thread-safe: the glue serialises all calls on one IcCore
 * with the node's lock (BDRVIntellicacheState.lock), which it never holds
 * across a yield.  The core never blocks and never calls back.
 *
 * Misuse of the call protocol (an unknown fetch id, a fetch in the wrong
 * state, ending a sync that is not running) is a bug in the glue: the core
 * aborts with a message rather than guess.
 *
 * On-disk layout of a cache file (all integers little endian):
 *
 *   [0, 4096)                       header (IC_HEADER_SIZE)
 *   [meta_offset, + meta_blocks*4K)  presence bitmap, in 4 KiB blocks, each
 *                                    block self-checksummed
 *   [data_offset, + clusters*cs)     cluster data, direct-mapped: cluster N
 *                                    lives at data_offset + N * cluster_size
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef INTELLICACHE_CORE_H
#define INTELLICACHE_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- On-disk format ---- */
#define IC_FORMAT_VERSION 1
#define IC_HEADER_SIZE 4096
#define IC_META_BLOCK_SIZE 4096
#define IC_FINGERPRINT_SIZE 32
#define IC_MIN_CLUSTER_SIZE 4096u
#define IC_MAX_CLUSTER_SIZE (2u * 1024 * 1024)
/* Default cluster size: the smallest, unless the base is large (below). */
#define IC_DEFAULT_CLUSTER_SIZE 4096u
/* The default grows until the base has at most this many clusters. */
#define IC_DEFAULT_MAX_CLUSTERS (UINT64_C(1) << 26)
/* Most clusters a cache may have (the presence bitmap: 512 MiB). */
#define IC_MAX_CLUSTER_COUNT (UINT64_C(1) << 32)
/*
 * Largest base (bytes): IC_MAX_CLUSTER_COUNT clusters of the largest size,
 * 8 PiB.  Keeps every offset in int64.
 */
#define IC_MAX_BASE_SIZE (UINT64_C(1) << 53)
/* Base content sampled for the fingerprint: this many pieces of this size. */
#define IC_FINGERPRINT_SAMPLES 16
#define IC_FINGERPRINT_SAMPLE_SIZE 4096

/* ---- Limits and defaults of the options ---- */
#define IC_MAX_INFLIGHT_LIMIT 1024u
#define IC_DEFAULT_MAX_INFLIGHT 16u
#define IC_DEFAULT_MAX_FETCH (1024u * 1024)
#define IC_MAX_FETCH_LIMIT (64u * 1024 * 1024)
/* Largest read-ahead window. */
#define IC_MAX_READ_AHEAD (256u * 1024 * 1024)
/*
 * Most memory that fetch buffers of demand misses may take at once:
 * max-inflight x max-fetch must not exceed it.
 */
#define IC_MAX_FETCH_MEMORY (UINT64_C(1) << 30)

/* miss-timeout (seconds): the default and the largest accepted. */
#define IC_DEFAULT_MISS_TIMEOUT 20u
#define IC_MAX_MISS_TIMEOUT 3600u

/* ---- Fixed limits of the pipeline ---- */
/*
 * Writes into the cache in flight at once: the number of store writers.
 * 4 cut the CPU per cold 4 KiB miss by a quarter against 2; 8 cut it a
 * little more on a fast base but cost latency-bound reads a few percent
 * (docs/design.rst, Storing).
 */
#define IC_STORE_WRITERS 4u
/*
 * Fetched data waiting to be stored, at most.  Beyond it, fetched data is
 * not stored (the clusters stay absent): a slow cache disk must neither
 * slow down readers nor let memory grow without bound.
 */
#define IC_STORE_BACKLOG_LIMIT (UINT64_C(64) * 1024 * 1024)
/* Buffers of the largest fetch size kept for reuse (see the buffer pool). */
#define IC_BUF_POOL_SIZE 16u
/* How long stored clusters may wait before they are recorded durably. */
#define IC_SYNC_INTERVAL_MS 1000
/* Metadata blocks read or written with one request. */
#define IC_META_BATCH 64u
/* Segments planned at a time for one read. */
#define IC_PLAN_SEGMENTS 16u
/*
 * Zero fills started by one block status answer, at most: the answer ends
 * where they end, and the caller asks again for the rest.
 */
#define IC_ZERO_FILL_SEGMENTS 16u
/*
 * Clusters freed by one eviction batch, at most: each batch costs a
 * metadata sync (two flushes) before its room is free.
 */
#define IC_EVICT_BATCH 4096u

/* Where things live in a cache file for a given base size and cluster size. */
typedef struct IcGeometry {
    uint64_t base_size;     /* bytes */
    uint32_t cluster_size;  /* bytes, power of two */
    uint64_t cluster_count; /* ceil(base_size / cluster_size) */
    uint64_t meta_offset;   /* first metadata block (bytes from file start) */
    uint64_t meta_blocks;   /* number of IC_META_BLOCK_SIZE blocks */
    uint64_t data_offset;   /* cluster 0's data */
    uint64_t file_size;     /* minimum size of a complete cache file */
} IcGeometry;

/*
 * Compute the layout.  Returns false (and writes a message naming the bad
 * value into @why) if cluster_size is not a power of two within
 * [IC_MIN_CLUSTER_SIZE, IC_MAX_CLUSTER_SIZE], base_size is 0 or larger
 * than IC_MAX_BASE_SIZE, or the base would have more than
 * IC_MAX_CLUSTER_COUNT clusters.
 */
bool ic_geometry_init(IcGeometry *g, uint64_t base_size, uint32_t cluster_size,
                      char *why, size_t why_len);

/*
 * The cluster size of a new cache for a base of @base_size bytes: the
 * smallest power of two from IC_DEFAULT_CLUSTER_SIZE up to
 * IC_MAX_CLUSTER_SIZE that gives at most IC_DEFAULT_MAX_CLUSTERS clusters
 * (4 KiB up to 256 GiB, 16 KiB up to 1 TiB, ...): small clusters fetch
 * least for random reads, and the presence bitmap stays within 8 MiB.
 */
uint32_t ic_default_cluster_size(uint64_t base_size);

/* What the header of a cache file records. */
typedef struct IcHeaderInfo {
    uint32_t version;
    uint32_t cluster_size;
    uint64_t base_size;
    uint64_t instance; /* random, new at every format; binds metadata blocks */
    uint8_t fingerprint[IC_FINGERPRINT_SIZE];
} IcHeaderInfo;

typedef enum IcHeaderStatus {
    IC_HEADER_OK = 0,
    IC_HEADER_EMPTY,        /* all zeros: never formatted, format it */
    IC_HEADER_FOREIGN,      /* not an intellicache file: do not touch */
    IC_HEADER_TRUNCATED,    /* shorter than the header or than its data */
    IC_HEADER_CORRUPT,      /* checksum or field out of range */
    IC_HEADER_VERSION,      /* written by another format version */
    IC_HEADER_CLUSTER_SIZE, /* another cluster size than requested */
    IC_HEADER_BASE_SIZE,    /* cache of a base of another size */
    IC_HEADER_FINGERPRINT,  /* cache of another base (same size) */
} IcHeaderStatus;

/* Encode a header block (exactly IC_HEADER_SIZE bytes into @out). */
void ic_header_encode(const IcHeaderInfo *h, uint8_t *out);

/*
 * Decode and validate a header against what the node expects.
 *
 * @buf/@buf_len: the first bytes of the cache file (up to IC_HEADER_SIZE;
 *                a shorter buffer means the file is that short).
 * @file_size:    the cache file's current length.
 * @expected:     base_size and fingerprint to match; cluster_size 0 means
 *                "accept the cache's own cluster size".
 * @found:        filled with the decoded header when it could be decoded.
 * @why:          a one-line human-readable reason for any status but OK.
 */
IcHeaderStatus ic_header_check(const uint8_t *buf, size_t buf_len,
                               uint64_t file_size, const IcHeaderInfo *expected,
                               IcHeaderInfo *found, char *why, size_t why_len);

/* ---- Options ---- */

/* The node's options as the user gave them (has_*: the option was given). */
typedef struct IcOptions {
    bool has_cluster_size;
    uint64_t cluster_size;
    bool has_max_inflight;
    uint64_t max_inflight;
    bool has_max_fetch;
    uint64_t max_fetch;
    bool has_read_ahead;
    uint64_t read_ahead;
    bool has_miss_timeout;
    uint64_t miss_timeout; /* seconds */
    bool has_cache_size;
    uint64_t cache_size; /* bytes */
    bool has_scan_threshold;
    uint64_t scan_threshold; /* bytes */
    uint64_t pool_size;      /* the pool's size; 0: not in a pool */
} IcOptions;

/* The options in effect, every default applied. */
typedef struct IcSettings {
    uint32_t cluster_size; /* 0 until the cache's cluster size is known */
    uint32_t max_inflight;
    uint64_t max_fetch;
    uint64_t read_ahead;
    uint64_t miss_timeout_ms; /* 0: misses neither wait nor retry */
    uint64_t cache_size;      /* bytes of cached data; 0: unbounded */
    uint64_t scan_threshold;  /* bytes; 0: scans are stored too */
} IcSettings;

/*
 * Check each option on its own (ranges, powers of two) and fill @out with
 * everything that does not depend on the cluster size.  On error returns
 * false with a message in @why naming the option and the accepted range.
 * cluster-size is refused if given as 0.
 */
bool ic_options_check(const IcOptions *opts, IcSettings *out, char *why,
                      size_t why_len);

/*
 * Complete @set for the cache's @cluster_size (the user's, the existing
 * cache's, or the default): max-fetch defaults to the larger of
 * IC_DEFAULT_MAX_FETCH and one cluster and must be a multiple of the
 * cluster size; read-ahead defaults to two max-fetch; max-inflight x
 * max-fetch must fit IC_MAX_FETCH_MEMORY.  False with a message naming the
 * options otherwise.  @opts says which values the user gave.
 */
bool ic_settings_resolve(const IcOptions *opts, IcSettings *set,
                         uint32_t cluster_size, char *why, size_t why_len);

/* ---- Opening a cache file ---- */

typedef enum IcOpenAction {
    IC_OPEN_USE,    /* a valid cache of this base: load its metadata */
    IC_OPEN_FORMAT, /* empty: format it */
    IC_OPEN_RESET,  /* a stale or damaged cache: warn, then format it */
    IC_OPEN_REFUSE, /* not a cache: refuse to overwrite it */
    IC_OPEN_EMPTY,  /* would be formatted, but nothing may be written now
                       (no I/O, or the node is inactive): start with an
                       empty in-memory state, write nothing; an inactive
                       node decides again when it is activated */
} IcOpenAction;

/*
 * What to do with a cache file whose header check gave @status.
 * @base_readable: the base's fingerprint could be computed (false with
 * BDRV_O_NO_IO, where a fingerprint mismatch cannot be told and a cache
 * that is otherwise valid is used as recorded).  @writable: the cache
 * file may be written now (false when inactive or without I/O).
 */
IcOpenAction ic_open_decide(IcHeaderStatus status, bool base_readable,
                            bool writable);

/*
 * The same for a node opened without its base (offline start): a valid
 * cache is used as it is recorded (check the header with a NULL expected
 * header, then again with the recorded one and the requested cluster
 * size); anything else is refused, since it could be neither checked
 * against the base nor formatted for it.
 */
IcOpenAction ic_open_decide_without_base(IcHeaderStatus status);

/* ---- The base's fingerprint (part of the on-disk format) ---- */

typedef struct IcRange {
    uint64_t offset;
    uint64_t bytes;
} IcRange;

/* Largest preamble ic_fingerprint_preamble() writes. */
#define IC_FINGERPRINT_PREAMBLE_MAX 64

/*
 * The fingerprint of a base is SHA-256 over: the preamble, then the base's
 * bytes at each range of ic_fingerprint_plan() in order, then the user's
 * base-fingerprint string with its terminating NUL if one was given.
 * Changing any of this invalidates every existing cache.
 *
 * ic_fingerprint_preamble() writes the preamble for @base_size into @out
 * and returns its length.  ic_fingerprint_plan() writes the sampled ranges
 * (IC_FINGERPRINT_SAMPLES at most, sorted, not overlapping, within the
 * base) into @out and returns their number.
 */
size_t ic_fingerprint_preamble(uint64_t base_size,
                               uint8_t out[IC_FINGERPRINT_PREAMBLE_MAX]);
size_t ic_fingerprint_plan(uint64_t base_size,
                           IcRange out[IC_FINGERPRINT_SAMPLES]);

typedef struct IcCore IcCore;

/*
 * Create the in-memory state of one cache: all clusters absent, active,
 * caching.  @max_fetch_bytes bounds one coalesced fetch (rounded down to
 * whole clusters, at least one cluster); @max_inflight bounds the base
 * reads in flight (see the fetch slots).  Returns NULL with a message in
 * @why if @g is invalid or the state (the presence bitmap, sized by the
 * user's base and cluster size) cannot be allocated: never aborts for
 * lack of memory.
 */
IcCore *ic_core_new(const IcGeometry *g, uint64_t instance,
                    uint64_t max_fetch_bytes, uint32_t max_inflight, char *why,
                    size_t why_len);
/*
 * Free the core (NULL is fine).  The buffer pool must be empty: the core
 * cannot free the glue's buffers, so the glue first calls
 * ic_core_buf_reclaim() until it returns NULL, freeing each buffer; a
 * buffer still pooled here is a protocol error.
 */
void ic_core_free(IcCore *core);
const IcGeometry *ic_core_geometry(const IcCore *core);

/*
 * Metadata blocks.  Block i covers clusters
 * [i * IC_META_BLOCK_CLUSTERS, (i + 1) * IC_META_BLOCK_CLUSTERS).
 */
#define IC_META_BLOCK_HEADER 16
#define IC_META_BLOCK_CLUSTERS ((IC_META_BLOCK_SIZE - IC_META_BLOCK_HEADER) * 8)

typedef enum IcMetaStatus {
    IC_META_OK = 0,  /* valid: its bits were loaded */
    IC_META_EMPTY,   /* all zeros (never written): nothing loaded */
    IC_META_STALE,   /* valid block of an earlier format: ignored */
    IC_META_DAMAGED, /* checksum/field mismatch: ignored */
} IcMetaStatus;

/*
 * Load block @index from @buf (IC_META_BLOCK_SIZE bytes) at open time.  Only
 * an OK block sets bits; bits beyond cluster_count are ignored.  Loaded bits
 * count as durable.
 */
IcMetaStatus ic_core_load_meta_block(IcCore *core, uint64_t index,
                                     const uint8_t *buf);

/*
 * Encode block @index as it may be written now: only clusters whose data
 * is known durable (see ic_core_sync_begin) are set.
 */
void ic_core_encode_meta_block(const IcCore *core, uint64_t index,
                               uint8_t *out);

/* Byte offset of metadata block @index in the cache file. */
uint64_t ic_core_meta_block_offset(const IcCore *core, uint64_t index);

/* ---- Where data lives in the cache file ---- */

/*
 * Byte offset in the cache file of the base's byte @offset: the one owner
 * of the mapping (HIT segments, stores and block status all use it).
 */
uint64_t ic_core_cache_offset(const IcCore *core, uint64_t offset);

/* ---- Read planning ---- */

typedef uint64_t IcFetchId;

typedef enum IcSegKind {
    IC_SEG_HIT,   /* read [offset, +bytes) from the cache file's data area */
    IC_SEG_FETCH, /* a new fetch this request must issue */
    IC_SEG_WAIT,  /* a fetch already issued by someone else covers it */
} IcSegKind;

typedef struct IcSegment {
    IcSegKind kind;
    uint64_t offset;       /* guest offset of this piece of the request */
    uint64_t bytes;        /* its length */
    uint64_t cache_offset; /* HIT: where the piece is in the cache file */
    IcFetchId fetch;       /* FETCH/WAIT: the fetch that covers it */
    uint64_t fetch_offset; /* FETCH/WAIT: base offset of the whole fetch */
    uint64_t fetch_bytes;  /* FETCH/WAIT: length of the whole fetch */
    void *opaque;          /* WAIT: what ic_core_fetch_set_opaque() set */
} IcSegment;

/*
 * Split the guest read [offset, offset + bytes) into segments, in offset
 * order, contiguous, covering a prefix of the request.  New fetches are
 * registered as in flight before this returns, so later plans wait on them.
 * Neighbouring absent clusters become one fetch, up to max_fetch_bytes.
 * Neighbouring present clusters become one HIT segment.
 *
 * Returns the number of segments written to @segs (at most @max_segs, which
 * must be >= 1).  If the request needs more segments, the covered prefix
 * ends at a segment boundary; the caller plans the rest afterwards.  The
 * request must lie within the base (offset + bytes <= base_size).
 */
size_t ic_core_plan(IcCore *core, uint64_t offset, uint64_t bytes,
                    IcSegment *segs, size_t max_segs);

/* ---- Read-ahead ---- */

/*
 * Keep up to @window bytes read ahead of sequential streams (0, the
 * default, disables read-ahead).
 */
void ic_core_set_read_ahead(IcCore *core, uint64_t window);

/*
 * Note a user read (after planning it).  Returns true with the range to
 * read ahead in @ra_offset/@ra_bytes when the read continues a sequential
 * stream that needs more read-ahead.
 */
bool ic_core_note_read(IcCore *core, uint64_t offset, uint64_t bytes,
                       uint64_t *ra_offset, uint64_t *ra_bytes);

/*
 * Plan the first segment of read-ahead over [offset, offset + bytes): like
 * ic_core_plan() with max_segs 1, but not counted as a user read.  A FETCH
 * segment is a read-ahead fetch (counted in readahead_bytes); HIT and WAIT
 * segments need nothing.  Returns 0 if the range is empty.
 */
size_t ic_core_plan_read_ahead(IcCore *core, uint64_t offset, uint64_t bytes,
                               IcSegment *seg);

/*
 * Plan the first segment of a prefetch (the prefetch job, or a read with
 * BDRV_REQ_PREFETCH) over [offset, offset + bytes): as
 * ic_core_plan_read_ahead(), but a FETCH segment counts in prefetch_bytes.
 * Returns 0 if the range is empty or the cache is not CACHING.
 */
size_t ic_core_plan_prefetch(IcCore *core, uint64_t offset, uint64_t bytes,
                             IcSegment *seg);

/*
 * Plan the first segment of fetching again clusters that guests read and
 * that were not stored then (deferred stores, ic_core_defer_take()): as
 * ic_core_plan_prefetch(), but once stored they do not count as data
 * loaded ahead of a reader (hit_ahead_bytes).
 */
size_t ic_core_plan_refill(IcCore *core, uint64_t offset, uint64_t bytes,
                           IcSegment *seg);

/*
 * Plan the first segment of recording [offset, offset + bytes), which the
 * base reported as reading zeros, without reading it: like
 * ic_core_plan_read_ahead(), but a FETCH segment is a zero fill.  It takes
 * no fetch slot and is never read from the base: the glue calls
 * ic_core_fetch_done() at once, admits it (it takes no room in the store
 * backlog, having no data) and its writer writes zeros (IcStoreJob.zeros).
 * Once stored, its clusters are present like any others, so reads and
 * block status of them are answered locally.  The range must be whole
 * clusters (its end may be the end of the base).  Returns 0 if the range
 * is empty or the cache is not CACHING.
 */
size_t ic_core_plan_zeros(IcCore *core, uint64_t offset, uint64_t bytes,
                          IcSegment *seg);

/* Attach the glue's object to a fetch (returned in later WAIT segments). */
void ic_core_fetch_set_opaque(IcCore *core, IcFetchId id, void *opaque);

/*
 * The base read of fetch @id finished.  On failure its clusters become
 * absent again and the fetch is forgotten (waiters must be told by the
 * glue).  On success later plans still get WAIT segments for it (its data
 * is in the glue's buffer) until ic_core_fetch_stored().
 */
void ic_core_fetch_done(IcCore *core, IcFetchId id, bool ok);

/*
 * The write of fetch @id's data into the cache file finished (or was not
 * attempted: @ok false).  On success its clusters become present (served as
 * hits from now on) and pending durability; on failure, absent.  The fetch
 * is forgotten either way.
 */
void ic_core_fetch_stored(IcCore *core, IcFetchId id, bool ok);

/*
 * The data of fetch @id is deliberately not stored (caching stopped, or the
 * glue's backlog of stores is full): its clusters become absent again and
 * the fetch is forgotten, counted as store_skipped, not as an error.
 */
void ic_core_fetch_dropped(IcCore *core, IcFetchId id);

/* ---- Durability of the presence bitmap ---- */

/*
 * Start a metadata sync: the clusters stored so far become "being synced".
 * The caller must then flush the cache file (so their data is durable),
 * write every run of blocks listed by ic_core_sync_runs() (each block
 * encoded with ic_core_encode_meta_block()), flush the cache file again
 * (so the records are durable), and call ic_core_sync_end().  Only then do
 * the clusters count as durable.  Returns false if there is nothing to
 * sync, a sync is running, or the node is not active.
 */
bool ic_core_sync_begin(IcCore *core);

/* Consecutive metadata blocks written with one request. */
typedef struct IcMetaRun {
    uint64_t first;  /* first block index */
    uint64_t count;  /* blocks, 1 to IC_META_BATCH */
    uint64_t offset; /* byte offset of block @first in the cache file */
} IcMetaRun;

/*
 * The runs the sync in progress must write, in block order: writes up to
 * @max of them into @runs and returns how many there are in all (call
 * with @max 0 to size the array).
 */
size_t ic_core_sync_runs(const IcCore *core, IcMetaRun *runs, size_t max);

/*
 * Finish the sync: on success the synced clusters are durable.  On failure
 * they go back to pending and are retried by a later sync.
 */
void ic_core_sync_end(IcCore *core, bool ok);

/* True if stored clusters are waiting for a sync. */
bool ic_core_sync_needed(const IcCore *core);

/* True if no fetch is in flight (being read, or waiting to be stored). */
bool ic_core_idle(const IcCore *core);

/* ---- State of the cache ---- */

typedef enum IcCacheState {
    IC_CACHE_CACHING,  /* hits from the cache, misses fetched and stored */
    IC_CACHE_STOPPED,  /* a write into the cache failed: hits are still
                          served from it, nothing more is stored */
    IC_CACHE_BYPASSED, /* a read of the cache failed: every read goes to
                          the base, nothing is stored */
    IC_CACHE_INACTIVE, /* the node is inactive (incoming migration, or
                          blockdev-set-active off): hits are served,
                          nothing is written into the cache file */
} IcCacheState;

/* Precedence: BYPASSED, then INACTIVE, then STOPPED, then CACHING. */
IcCacheState ic_core_cache_state(const IcCore *core);

/*
 * An I/O on the cache file failed: a read (@write false) bypasses the
 * cache, a write stops storing.  Both last until the node is reopened.
 * Returns true if this changed the state (the glue warns once).
 */
bool ic_core_cache_failed(IcCore *core, bool write);

/*
 * Activate or deactivate the node.  Deactivating with stores queued or a
 * sync running is a protocol error: the glue drains and syncs first.
 */
void ic_core_set_active(IcCore *core, bool active);

/* ---- Tunables ---- */

/*
 * Apply resolved settings (ic_settings_resolve()) to a live core: open and
 * blockdev-reopen.  @set->cluster_size must be the core's.  Takes effect
 * for later plans, slots and read-ahead; fetches in flight keep their
 * size.  Pooled buffers of another size become reclaimable.
 */
void ic_core_apply_settings(IcCore *core, const IcSettings *set);

/* ---- A bounded cache: cache-size and eviction ---- */

/*
 * A host-wide budget shared by the caches of several nodes: together they
 * hold at most @size bytes (the intellicache-pool object).  When less
 * than 1/32 of it (at most 256 MiB) is free, one member is asked to free
 * enough to leave twice that: one whose stores are seldom read again if
 * any (its reuse-low), else the one that holds the most bytes.  Thread-safe
 * (it has its own lock; lock order: a node's lock, then the pool's).
 */
typedef struct IcPool IcPool;

/* A pool of @size bytes (> 0); NULL if out of memory. */
IcPool *ic_pool_new(uint64_t size);
/* Free @pool (NULL is fine), which must have no members left. */
void ic_pool_free(IcPool *pool);
/* Its size; the bytes its members hold now, and how many members it has. */
uint64_t ic_pool_size(const IcPool *pool);
uint64_t ic_pool_used(const IcPool *pool);
size_t ic_pool_members(const IcPool *pool);
/*
 * The member (the @member given to ic_core_set_bound()) that must free
 * room now, for the caller to wake its eviction (its
 * ic_core_evict_needed() is then true); NULL while enough is free.
 */
void *ic_pool_victim(IcPool *pool);

/*
 * Bound the cache as @set says (cache_size, scan_threshold; cluster_size
 * must be the core's) and make it a member of @pool (NULL: of none),
 * known to it as @member.  A member is bounded by its own cache_size, or
 * else only by the pool; its stores take room from the pool, and what it
 * holds moves to the new pool when @pool changes (counted at once, even
 * beyond the pool's size: the pool then asks for room).  It leaves its
 * pool when freed.  At most cache_size / cluster_size clusters with data.
 * The first bound builds the eviction policy from the clusters present
 * (all as equals: their history is not recorded); no bound (cache_size
 * 0, no pool) drops it.  A lower bound frees the excess through the next
 * batches.  Must not be called while a batch is being freed.  Returns
 * false with a message if the policy cannot be allocated; the core, its
 * bound and its pool are then unchanged.
 */
bool ic_core_set_bound(IcCore *core, const IcSettings *set, IcPool *pool,
                       void *member, char *why, size_t why_len);

/*
 * Whether a batch of clusters should be freed now: the cache is bounded,
 * CACHING and active, less than its headroom is free, and no batch is
 * being freed.
 */
bool ic_core_evict_needed(const IcCore *core);

/*
 * Start freeing a batch of clusters chosen by the eviction policy and
 * return the number of ranges of the cache file they occupy.  They are
 * absent at once (later reads fetch them again, but what is fetched for
 * them is not stored until the batch ends), and their metadata blocks
 * join the next sync.  Freeing is crash-safe only in this order, which
 * the glue follows:
 *
 *   1. wait until every read of the cache file planned before this call
 *      has ended (a hit in progress pins its data);
 *   2. run metadata syncs until ic_core_evict_durable(): no record on
 *      disk says the clusters are present;
 *   3. free each range (ic_core_evict_ranges()) in the cache file;
 *   4. ic_core_evict_end().
 *
 * Only when ic_core_evict_needed() is true.
 */
size_t ic_core_evict_begin(IcCore *core);

/*
 * The byte ranges of the cache file that the batch occupies, in file
 * order, from range @from: writes up to @max of them into @out and
 * returns how many it wrote.
 */
size_t ic_core_evict_ranges(const IcCore *core, size_t from, IcRange *out,
                            size_t max);

/* Whether the batch's cleared records are durable (step 2 is done). */
bool ic_core_evict_durable(const IcCore *core);

/*
 * The batch is over: its data was freed, or could not be (a sync or a
 * discard failed: the data stays, unrecorded, which is safe).  Its room
 * is available again and its clusters may be stored again.
 */
void ic_core_evict_end(IcCore *core);

/*
 * The parts of the cache file's range [cache_offset, cache_offset + bytes)
 * that belong to clusters not present, within the data area, in file
 * order: up to @max ranges into @out, returns how many.  Fewer than @max
 * means the range is done; otherwise the caller goes on from the end of
 * the last one.  Data found there is left over from a crash (stored and
 * not yet recorded, or evicted and not yet discarded): a bounded cache
 * discards it when it is opened, since it takes room that the budget
 * does not count.  Only while no fetch is in flight.
 */
size_t ic_core_unrecorded(const IcCore *core, uint64_t cache_offset,
                          uint64_t bytes, IcRange *out, size_t max);

/* ---- Fetch slots: at most max-inflight base reads at once ---- */

typedef enum IcFetchKind {
    IC_FETCH_DEMAND,     /* a guest read waits for it */
    IC_FETCH_READ_AHEAD, /* nobody waits for it yet */
    IC_FETCH_PREFETCH,   /* the prefetch job's: nobody waits for it yet */
} IcFetchKind;

/*
 * Take a slot for a base read.  DEMAND: true if a slot is free; otherwise
 * false, and the caller is counted as waiting: it must wait until
 * ic_core_slot_put() says to wake one waiter, then call again.
 * READ_AHEAD: true only while fewer than half the slots are busy and no
 * demand read waits (read-ahead never takes queue depth from misses);
 * never waits.  PREFETCH: true only while no demand read waits and a
 * quarter of the slots (at least one, with a limit of 2 or more) stays
 * free for misses that come meanwhile; never waits.
 */
bool ic_core_slot_take(IcCore *core, IcFetchKind kind);

/*
 * Give a slot back.  Returns true if one waiting demand read must be woken
 * (it is no longer counted as waiting, and calls ic_core_slot_take again).
 */
bool ic_core_slot_put(IcCore *core);

/*
 * Guests first: a demand read (a guest's miss) started at @now_ms.  For
 * IC_GUEST_QUIET_MS after the last one, prefetches yield to guests
 * (ic_core_prefetch_slot_take()).
 */
#define IC_GUEST_QUIET_MS 500
#define IC_GUEST_PREFETCH_BYTES (UINT64_C(256) * 1024)
void ic_core_note_guest_miss(IcCore *core, uint64_t now_ms);

/*
 * A slot for a prefetch at @now_ms, and in @max_bytes the most its fetch
 * may cover.  While guests are quiet: as ic_core_slot_take(PREFETCH), and
 * max-fetch.  While they miss: only when no base read at all is in flight,
 * and IC_GUEST_PREFETCH_BYTES (at least a cluster).  A guest's miss then
 * queues behind at most one small prefetch on the base's connection,
 * instead of behind every prefetch in flight there (an unthrottled job
 * multiplied the median miss latency by 6.6 over a 1 ms NBD base).
 */
bool ic_core_prefetch_slot_take(IcCore *core, uint64_t now_ms,
                                uint64_t *max_bytes);

/* ---- Storing fetched data ---- */

/*
 * The base read of fetch @id succeeded (after ic_core_fetch_done()).
 * Returns true if its data is to be stored: the fetch joins the store
 * queue and its bytes count in the backlog until it is stored or dropped;
 * the glue keeps the buffer.  Returns false if it is not stored (the cache
 * is not CACHING, or the backlog would exceed IC_STORE_BACKLOG_LIMIT): the
 * fetch is dropped as by ic_core_fetch_dropped().
 */
bool ic_core_store_admit(IcCore *core, IcFetchId id);

/*
 * Deferred stores.  Storing a miss as it is fetched costs the node about
 * as much CPU as serving it.  While the thread that serves the node is
 * busy (ic_core_note_thread_busy()), that time is taken from guests; and
 * while few of the clusters that misses bring into an unbounded cache are
 * read again (a random read over a base far larger than what is read
 * twice), it buys nothing soon.  When both hold, ic_core_store_admit()
 * refuses a guest's miss and queues its clusters instead (a bounded
 * number; when the queue is full, misses are stored at once again).
 * Read-ahead, prefetches and fetches that two guests' reads wait on are
 * always stored.
 *
 * Returns in @range the next run of deferred clusters to fetch and store
 * (with the prefetch path), removed from the queue, while the cache is
 * CACHING and no guest missed within IC_GUEST_QUIET_MS of @now_ms; false
 * if there is none or it is not time.
 */
bool ic_core_defer_take(IcCore *core, uint64_t now_ms, IcRange *range);
/*
 * The thread that serves the node ran or waited for a CPU @permille
 * thousandths of the time over its last measured window (about 100 ms),
 * for the next ic_core_store_admit() calls: from 600 on the thread counts
 * as busy, until it falls below 300.
 */
void ic_core_note_thread_busy(IcCore *core, uint32_t permille);
/* Whether deferred clusters are queued. */
bool ic_core_defer_pending(const IcCore *core);

/*
 * Whether to start one more store writer: true (and the writer is counted
 * as running) while fewer than IC_STORE_WRITERS run and fetches are
 * queued.  The glue calls it in a loop after admitting fetches.
 */
bool ic_core_store_writer_start(IcCore *core);

/* One queued fetch for a running writer. */
typedef struct IcStoreJob {
    IcFetchId fetch;
    void *opaque;          /* what ic_core_fetch_set_opaque() set */
    uint64_t cache_offset; /* where to write its data in the cache file */
    uint64_t bytes;        /* bytes to write */
    bool write;            /* false: the cache stopped caching meanwhile;
                              the fetch is already dropped, only release
                              the glue's object */
    bool zeros;            /* a zero fill (ic_core_plan_zeros()): write
                              zeros, there is no data */
} IcStoreJob;

/*
 * The next job of a running writer, in queue order: true and @job filled,
 * or false when the queue is empty, and the writer is counted as stopped
 * (it must exit).  After a job with @write, the glue writes the data and
 * calls ic_core_fetch_stored().
 */
bool ic_core_store_next(IcCore *core, IcStoreJob *job);

/* ---- Fetch buffers ---- */

/*
 * Buffers of max-fetch bytes are kept for reuse: sequential reads fetch
 * max-fetch bytes at a time, and allocating such a buffer anew for each
 * fetch costs more in page faults and page clearing than the copies.
 * Smaller buffers come from malloc's heap and need no pool.  The core
 * holds the pooled pointers only; the glue allocates and frees them.
 */

/* A pooled buffer of @bytes, or NULL: the glue allocates one. */
void *ic_core_buf_take(IcCore *core, uint64_t bytes);

/* Offer @buf of @bytes back: true if the pool kept it, else free it. */
bool ic_core_buf_give(IcCore *core, void *buf, uint64_t bytes);

/*
 * While the node is idle (no fetch in flight, nothing queued to store),
 * the pool is emptied: returns the next pooled buffer for the glue to
 * free, or NULL when there is none or the node is busy.
 */
void *ic_core_buf_reclaim(IcCore *core);

/* ---- Health of the base ---- */

/* Retries of a miss: the first delay, doubling up to the largest. */
#define IC_RETRY_FIRST_MS 100u
#define IC_RETRY_MAX_MS 1000u
/* A base read pending this long makes the base RETRYING. */
#define IC_BASE_SLOW_MS 2000u
/* How often the health timer runs while it is needed (see below). */
#define IC_HEALTH_TICK_MS 250u
/* While the base is DOWN, it is probed this often. */
#define IC_PROBE_INTERVAL_MS 1000u

typedef enum IcBaseState {
    IC_BASE_UP,       /* the last base read that ended succeeded */
    IC_BASE_RETRYING, /* a base read failed with an error that may pass,
                         or is slow: misses are retried until their
                         miss-timeout */
    IC_BASE_DOWN,     /* a miss waited its whole miss-timeout: new misses
                         fail at once, a probe looks for the base */
} IcBaseState;

typedef enum IcBaseEvent {
    IC_BASE_READ_OK,     /* a base read (fetch or probe) succeeded */
    IC_BASE_READ_FAILED, /* a base read failed with an error that may pass
                            (ic_base_error_transient()) */
    IC_BASE_READ_SLOW,   /* a base read has been pending IC_BASE_SLOW_MS */
    IC_BASE_GAVE_UP,     /* a miss waited miss-timeout and was failed */
    IC_BASE_DETACHED,    /* the node has no base */
} IcBaseEvent;

/* Counters of what the node did about the base's health. */
typedef enum IcHealthCounter {
    IC_HEALTH_RETRIES,       /* base reads of misses tried again */
    IC_HEALTH_MISS_TIMEOUTS, /* misses failed at their miss-timeout */
    IC_HEALTH_FAST_FAILS,    /* misses failed at once while DOWN */
    IC_HEALTH_PROBES,        /* probe reads of a DOWN base */
    IC_HEALTH_LATE_READS,    /* base reads that answered after every
                                reader waiting for them gave up */
    IC_HEALTH_COUNTERS,
} IcHealthCounter;

/* What the health timer does (ic_health_tick()). */
typedef struct IcHealthTick {
    bool slow;  /* a read is slow: note IC_BASE_READ_SLOW */
    bool probe; /* start a probe read of the base */
} IcHealthTick;

/*
 * The base's health is kept apart from IcCore: it is about the base, not
 * the cache file, and outlives a core replaced at activation.  Serialised
 * by the same lock as the core.
 */
typedef struct IcHealth IcHealth;

/* A new health in @initial state (NULL only if out of memory). */
IcHealth *ic_health_new(IcBaseState initial);
void ic_health_free(IcHealth *h);
IcBaseState ic_health_state(const IcHealth *h);

/*
 * Apply @ev.  Any success makes the base UP; a failure or a slow read
 * makes an UP base RETRYING; a miss that gave up, or no base, makes it
 * DOWN.  Returns true if the state changed, with the state before in @old
 * (may be NULL).
 */
bool ic_health_note(IcHealth *h, IcBaseEvent ev, IcBaseState *old);

/*
 * Whether a new miss fails at once (-EIO) instead of reading the base:
 * while DOWN, with a miss-timeout of @miss_timeout_ms > 0.
 */
bool ic_health_fails_fast(const IcHealth *h, uint64_t miss_timeout_ms);

/*
 * The health timer fired at @now_ms (a monotonic clock).  @oldest_pending:
 * whether a base read is pending, and since when (@oldest_pending_ms).
 * Says whether that read is slow (older than IC_BASE_SLOW_MS: the glue
 * notes IC_BASE_READ_SLOW), and asks for a probe while DOWN with no base
 * read pending and @probe_running false, IC_PROBE_INTERVAL_MS after the
 * last probe started.  The glue keeps the timer armed,
 * every IC_HEALTH_TICK_MS, while ic_health_timer_needed().
 */
IcHealthTick ic_health_tick(const IcHealth *h, uint64_t now_ms,
                            bool oldest_pending, uint64_t oldest_pending_ms,
                            bool probe_running);
bool ic_health_timer_needed(const IcHealth *h, bool reads_pending);
/* The probe a tick asked for started at @now_ms (probes are 1 s apart). */
void ic_health_probe_started(IcHealth *h, uint64_t now_ms);

void ic_health_count(IcHealth *h, IcHealthCounter c);
uint64_t ic_health_counter(const IcHealth *h, IcHealthCounter c);

/* Names for messages and QAPI: "up", "retrying", "down". */
const char *ic_base_state_name(IcBaseState state);

/*
 * Whether a base read's error may pass: a lost or refused connection, a
 * timeout, EIO (what network block drivers report for all of these), or
 * no memory for the fetch.  @err is a positive errno.
 */
bool ic_base_error_transient(int err);

/*
 * A miss's base read failed with @err (positive errno) on try @attempt
 * (from 1), @waited_ms after the miss began; the miss may wait
 * @timeout_ms in all.  Returns true with the delay before the next try in
 * @delay_ms (100 ms, doubling up to IC_RETRY_MAX_MS, the last one ending
 * at the deadline), or false: fail the miss now (an error that cannot
 * pass, a timeout of 0, or the deadline reached).
 */
bool ic_miss_retry(int err, unsigned attempt, uint64_t waited_ms,
                   uint64_t timeout_ms, uint64_t *delay_ms);

/* ---- Boot profiles ---- */

/*
 * A profile lists the clusters of a base in the order a node first read
 * them, with the time of each first read; replayed on an empty cache, it
 * warms the cache in that order.  File format: ic_profile.hpp.
 */
#define IC_PROFILE_VERSION 1
#define IC_PROFILE_HEADER_SIZE 64
#define IC_PROFILE_ENTRY_SIZE 8
/* Entries a recorder keeps at most (128 MiB of them). */
#define IC_PROFILE_MAX_ENTRIES (1u << 24)

typedef struct IcProfileHeader {
    uint32_t version;      /* 0 in ic_profile_encode(): IC_PROFILE_VERSION */
    uint32_t cluster_size; /* of the clusters listed */
    uint64_t base_size;
    uint8_t fingerprint[IC_FINGERPRINT_SIZE];
    uint64_t count; /* entries */
} IcProfileHeader;

typedef struct IcProfileEntry {
    uint32_t cluster; /* index, in clusters of the header's size */
    uint32_t ms;      /* milliseconds from the start of the recording */
} IcProfileEntry;

typedef enum IcProfileStatus {
    IC_PROFILE_OK = 0,
    IC_PROFILE_FOREIGN,          /* not a profile */
    IC_PROFILE_VERSION_MISMATCH, /* another format version */
    IC_PROFILE_TRUNCATED,        /* shorter than its header says */
    IC_PROFILE_CORRUPT,          /* checksum, trailing bytes, bad entry */
    IC_PROFILE_OTHER_BASE,       /* recorded for another base */
} IcProfileStatus;

/* Bytes of a profile file with @count entries. */
size_t ic_profile_encoded_size(uint64_t count);

/*
 * Check the profile file @buf of @len bytes; with @expected non-NULL, also
 * that its base size and fingerprint are @expected's.  @found gets the
 * header once it is readable; on OK, if @entries is non-NULL, *@entries
 * gets a g_malloc-compatible (malloc) array of found->count entries, which
 * the caller frees with free().  Any other status comes with a one-line
 * reason in @why.
 */
IcProfileStatus ic_profile_decode(const uint8_t *buf, size_t len,
                                  const IcProfileHeader *expected,
                                  IcProfileHeader *found,
                                  IcProfileEntry **entries, char *why,
                                  size_t why_len);

/* Records first reads (ProfileRecorder); not thread-safe, as the core. */
typedef struct IcProfileRecorder IcProfileRecorder;

/* NULL if out of memory (the bitmap has one bit per cluster). */
IcProfileRecorder *ic_profile_recorder_new(const IcGeometry *g,
                                           const uint8_t *fingerprint,
                                           uint64_t start_ms);
void ic_profile_recorder_free(IcProfileRecorder *r);
void ic_profile_recorder_note(IcProfileRecorder *r, uint64_t offset,
                              uint64_t bytes, uint64_t now_ms);
uint64_t ic_profile_recorder_entries(const IcProfileRecorder *r);
uint64_t ic_profile_recorder_dropped(const IcProfileRecorder *r);
/* The file so far: ic_profile_recorder_size() bytes into @out. */
size_t ic_profile_recorder_size(const IcProfileRecorder *r);
void ic_profile_recorder_encode(const IcProfileRecorder *r, uint8_t *out);

/* ---- Statistics ---- */

typedef struct IcStats {
    uint64_t hit_bytes;         /* guest bytes served from the cache */
    uint64_t hit_ahead_bytes;   /* the part of hit_bytes loaded ahead */
    uint64_t miss_bytes;        /* guest bytes served by new fetches */
    uint64_t wait_bytes;        /* guest bytes served by joining a fetch */
    uint64_t fetches;           /* base reads issued */
    uint64_t fetched_bytes;     /* bytes read from the base by fetches */
    uint64_t fetch_errors;      /* fetches that failed */
    uint64_t stored_bytes;      /* bytes written into the cache */
    uint64_t store_errors;      /* cache writes that failed */
    uint64_t store_skipped;     /* fetches deliberately not stored */
    uint64_t readahead_bytes;   /* bytes fetched by read-ahead */
    uint64_t prefetch_bytes;    /* bytes fetched by prefetches */
    uint64_t cached_clusters;   /* clusters present now */
    uint64_t durable_clusters;  /* clusters recorded on disk */
    uint64_t inflight_fetches;  /* fetches not yet forgotten */
    uint64_t store_backlog;     /* bytes fetched and queued to store */
    uint64_t zeroed_bytes;      /* bytes recorded as zeros, not read */
    uint64_t capacity_clusters; /* the bound (cache-size); 0: unbounded */
    uint64_t used_clusters;     /* clusters taking room within the bound */
    uint64_t evicted_clusters;  /* clusters freed to stay within it */
    uint64_t scan_bytes;        /* fetched bytes not stored: a scan read them */
    uint64_t no_room_bytes;     /* fetched bytes not stored: no room left */
    uint64_t unadmitted_bytes;  /* fetched bytes not stored: not admitted */
    /*
     * Unbounded: bytes of guests' misses not stored when fetched, queued
     * to be fetched again and stored once guests are quiet (now, and in
     * all), see ic_core_defer_take().
     */
    uint64_t deferred_bytes;
    uint64_t deferred_total_bytes;
    /*
     * Few clusters that entered lately were read again: a bounded cache's
     * admission refuses misses read once, an unbounded one defers them.
     */
    bool reuse_low;
} IcStats;

void ic_core_get_stats(const IcCore *core, IcStats *st);

/*
 * A user read of @bytes went to the base unplanned, the cache being
 * bypassed: counted with the misses (the base served it).
 */
void ic_core_note_bypass(IcCore *core, uint64_t bytes);

/*
 * A planned hit of @bytes could not be read from the cache file and the
 * base served it: moved from the hits to the misses.
 */
void ic_core_note_hit_failed(IcCore *core, uint64_t bytes);

/* ---- Latency histograms ---- */

/*
 * What a histogram times.  The glue measures; the histograms only count.
 *   HIT    a user read served wholly from the cache file
 *   MISS   a user read that needed the base: a fetch of its own, or one
 *          in flight it joined (including reads that failed)
 *   FETCH  one read of the base by a fetch (demand, read-ahead, prefetch)
 *   STORE  one write of fetched data into the cache file
 */
typedef enum IcLatencyKind {
    IC_LATENCY_HIT,
    IC_LATENCY_MISS,
    IC_LATENCY_FETCH,
    IC_LATENCY_STORE,
    IC_LATENCY_KINDS,
} IcLatencyKind;

/*
 * Bin 0: under 1 us; bin i: [2^(i-1) us, 2^i us); the last bin: from
 * ic_latency_bound(IC_LATENCY_BINS - 2) on.  Counts are cumulative since
 * the histograms were made, not per bin range.
 */
#define IC_LATENCY_BINS 28

typedef struct IcLatencySnapshot {
    uint64_t bins[IC_LATENCY_BINS];
    uint64_t sum_ns; /* of every duration recorded */
} IcLatencySnapshot;

typedef struct IcLatency IcLatency;

/* NULL if out of memory. */
IcLatency *ic_latency_new(void);
void ic_latency_free(IcLatency *lat);
/* Thread-safe and lock-free: callable from any thread without the lock. */
void ic_latency_record(IcLatency *lat, IcLatencyKind kind, uint64_t ns);
void ic_latency_get(const IcLatency *lat, IcLatencyKind kind,
                    IcLatencySnapshot *snap);
/* The exclusive upper bound of bin @i (< IC_LATENCY_BINS - 1), in ns. */
uint64_t ic_latency_bound(unsigned i);

/* True if cluster @index is present (for tests and tools). */
bool ic_core_cluster_present(const IcCore *core, uint64_t index);

/*
 * Block status: whether the byte at @offset is in a present cluster (served
 * from the cache file) and how many bytes from @offset, at most @bytes,
 * share that state.  The run ends at a cluster boundary, at the end of the
 * base, or at @offset + @bytes.  Returns 0 (and @present false) if @offset
 * is at or past the end of the base or @bytes is 0.
 */
uint64_t ic_core_present_run(const IcCore *core, uint64_t offset,
                             uint64_t bytes, bool *present);

#ifdef __cplusplus
}
#endif

#endif /* INTELLICACHE_CORE_H */
