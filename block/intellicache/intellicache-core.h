/*
 * intellicache core: the C interface between QEMU's block driver glue
 * (block/intellicache.c) and the C++ core in this directory.
 *
 * The core is pure logic: it knows nothing about QEMU, coroutines or I/O.
 * It decides what a read needs (hits, new fetches, waits on fetches already
 * in flight), keeps the cluster state, and encodes/decodes the on-disk
 * metadata.  The glue does all I/O and all waiting.
 *
 * The core is not thread-safe: the caller serialises all calls on one
 * IcCore (the glue runs it in one AioContext).
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
#define IC_MAX_INFLIGHT_LIMIT 1024u
#define IC_DEFAULT_MAX_INFLIGHT 16u
#define IC_DEFAULT_MAX_FETCH (1024u * 1024)
#define IC_MAX_FETCH_LIMIT (64u * 1024 * 1024)
/*
 * Largest base (bytes): IC_MAX_CLUSTER_COUNT clusters of the largest size,
 * 8 PiB.  Keeps every offset in int64.
 */
#define IC_MAX_BASE_SIZE (UINT64_C(1) << 53)

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

typedef struct IcCore IcCore;

/*
 * Create the in-memory state of one cache: all clusters absent.
 * @max_fetch_bytes bounds one coalesced fetch (rounded down to whole
 * clusters, at least one cluster).  Returns NULL if @g is invalid.
 */
IcCore *ic_core_new(const IcGeometry *g, uint64_t instance,
                    uint64_t max_fetch_bytes);
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
 * write every block listed by ic_core_sync_blocks() (encoded with
 * ic_core_encode_meta_block()), and call ic_core_sync_end().
 * Returns false if there is nothing to sync.
 */
bool ic_core_sync_begin(IcCore *core);

/* Blocks to write for the sync in progress; returns how many (<= max). */
size_t ic_core_sync_blocks(const IcCore *core, uint64_t *blocks, size_t max);
/* Total number of blocks the sync in progress must write. */
size_t ic_core_sync_block_count(const IcCore *core);

/*
 * Finish the sync: on success the synced clusters are durable.  On failure
 * they go back to pending and are retried by a later sync.
 */
void ic_core_sync_end(IcCore *core, bool ok);

/* True if stored clusters are waiting for a sync. */
bool ic_core_sync_needed(const IcCore *core);

/* ---- Statistics ---- */

typedef struct IcStats {
    uint64_t read_requests;    /* planned guest reads */
    uint64_t hit_bytes;        /* guest bytes served from the cache */
    uint64_t miss_bytes;       /* guest bytes served by new fetches */
    uint64_t wait_bytes;       /* guest bytes served by joining a fetch */
    uint64_t fetches;          /* base reads issued */
    uint64_t fetched_bytes;    /* bytes read from the base by fetches */
    uint64_t fetch_errors;     /* fetches that failed */
    uint64_t stored_bytes;     /* bytes written into the cache */
    uint64_t store_errors;     /* cache writes that failed */
    uint64_t store_skipped;    /* fetches deliberately not stored */
    uint64_t readahead_bytes;  /* bytes fetched by read-ahead */
    uint64_t cached_clusters;  /* clusters present now */
    uint64_t durable_clusters; /* clusters recorded on disk */
    uint64_t inflight_fetches; /* fetches not yet forgotten */
} IcStats;

void ic_core_get_stats(const IcCore *core, IcStats *st);

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
