"""--blockdev options (dicts) of the QEMU nodes the tests and the benchmark
build: bases, file nodes, intellicache and qcow2 overlays."""

# The cache file node configuration recommended for speed: O_DIRECT with
# Linux native AIO keeps the cache's writes out of the page cache, which
# otherwise costs more CPU than the cold reads themselves (docs/design.rst).
# Not for tmpfs, which has no O_DIRECT.
CACHE_DIRECT = {"cache": {"direct": True}, "aio": "native"}


def nfs_base(ganesha, name):
    """A QEMU nfs node for @name on the Ganesha server @ganesha."""
    return {"driver": "nfs", "server": {"type": "inet", "host": "127.0.0.1"},
            "path": ganesha.path(name)}


def nbd_base(socket_path):
    """A QEMU nbd client node on a unix socket."""
    return {"driver": "nbd", "server": {"type": "unix", "path": str(socket_path)}}


def file_node(node, filename, read_only=False, direct=True):
    """A file node, with O_DIRECT and native AIO (CACHE_DIRECT) by default."""
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
