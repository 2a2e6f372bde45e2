"""--blockdev options (dicts) of the QEMU nodes the tests and the benchmark
build: bases, file nodes, intellicache and qcow2 overlays."""

# The cache file node configuration recommended for speed: O_DIRECT keeps
# the cache's writes out of the page cache, which otherwise costs more CPU
# than the cold reads themselves, and io_uring lets the kernel finish a
# store that must allocate blocks in its own workers instead of in the
# submitting thread, which serves the guests (docs/design.rst, Deferred
# stores).  Not for tmpfs, which has no O_DIRECT.
CACHE_DIRECT = {"cache": {"direct": True}, "aio": "io_uring"}


# Seconds a request of QEMU's nbd client waits for a lost connection to
# come back before it fails (its reconnect-delay option).  Without it the
# client gives up at the first connection error: each request fails at
# once.  2 s, well below the node's miss-timeout, as docs/outages.rst
# recommends: the intellicache node retries failed base reads itself.
RECONNECT_DELAY = 2


def nfs_base(ganesha, name):
    """A QEMU nfs node for @name on the Ganesha server @ganesha."""
    return {"driver": "nfs", "server": {"type": "inet", "host": ganesha.host},
            "path": ganesha.path(name)}


def nbd_base(socket_path=None, export=None, host=None, port=None,
             reconnect_delay=RECONNECT_DELAY):
    """A QEMU nbd client node on the unix socket @socket_path, or on TCP
    @host:@port; @export names the export (the server's default if None).
    @reconnect_delay: QEMU's reconnect-delay (None or 0 leaves it out)."""
    if socket_path is not None:
        server = {"type": "unix", "path": str(socket_path)}
    else:
        server = {"type": "inet", "host": host, "port": str(port)}
    d = {"driver": "nbd", "server": server}
    if export is not None:
        d["export"] = export
    if reconnect_delay:
        d["reconnect-delay"] = reconnect_delay
    return d


def file_node(node, filename, read_only=False, direct=True):
    """A file node, with O_DIRECT and io_uring (CACHE_DIRECT) by default."""
    d = {"driver": "file", "node-name": node, "filename": str(filename)}
    if direct:
        d.update(CACHE_DIRECT)
    if read_only:
        d["read-only"] = True
    return d


def intellicache_node(node="ic0", file="base0", cache_file="cache0", **options):
    """An intellicache node over the nodes (names or dicts) @file and
    @cache_file; @options are its other options with QMP names, e.g.
    **{"max-inflight": 1}."""
    return dict({"driver": "intellicache", "node-name": node, "file": file,
                 "cache-file": cache_file}, **options)


def qcow2_node(node, file, backing):
    """A qcow2 node on the file node @file with the backing node @backing."""
    return {"driver": "qcow2", "node-name": node, "file": file, "backing": backing}
