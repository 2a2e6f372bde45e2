# Helpers shared by the intellicache iotests (not a test itself).
#
# Copyright (c) 2026 The intellicache authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

import contextlib
import hashlib
import os
import random
import re
import struct
import sys
import time
import zlib

import iotests
from iotests import QemuStorageDaemon, qemu_io

NBD_SOCK = os.path.join(iotests.sock_dir, 'ic-nbd.sock')


# Notices that AddressSanitizer prints about QEMU's coroutine stacks in
# sanitizer builds (scripts/build-qemu.sh --configure-args --enable-asan);
# they are not errors of the program under test.
_SANITIZER_NOTICE = re.compile(
    r"^(==\d+==WARNING: ASan .*|False positive error reports may follow|"
    r"For details see https://github.com/google/sanitizers/issues/189)\n",
    re.MULTILINE)


def tool_output(res):
    """A tool's combined output without sanitizer notices."""
    return _SANITIZER_NOTICE.sub('', res.stdout)


def write_random(path, size, seed):
    """A base image of @size bytes of reproducible random content."""
    rng = random.Random(seed)
    with open(path, 'wb') as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(rng.randbytes(n))
            left -= n


def sha256(path, size=None):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        data = f.read() if size is None else f.read(size)
    h.update(data)
    return h.hexdigest()


def image_opts(base, cache, **opts):
    """--image-opts string of an intellicache node over two file nodes."""
    s = (f'driver=intellicache,file.driver=file,file.filename={base},'
         f'cache-file.driver=file,cache-file.filename={cache}')
    for k, v in opts.items():
        s += f',{k.replace("_", "-")}={v}'
    return s


def empty_file(path):
    with open(path, 'wb'):
        pass
    os.chmod(path, 0o600)


@contextlib.contextmanager
def stderr_to(path):
    """Child processes started inside inherit @path as their stderr."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.dup2(fd, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)


def node_stats(qsd, node='ic0'):
    """The intellicache node's state and counters: its driver-specific
    stats in query-blockstats (BlockStatsSpecificIntellicache).  What
    describes the cache file is in the node's image information
    (format-specific, as qemu-img info shows it)."""
    for s in qsd.cmd('query-blockstats', {'query-nodes': True}):
        if s.get('node-name') == node:
            spec = s['driver-specific']
            assert spec['driver'] == 'intellicache', spec
            return spec
    raise AssertionError(f'node {node} not found')


class Daemon:
    """qemu-storage-daemon with base -> intellicache -> NBD export 'ic0'.

    @cache_blockdev: the cache node's --blockdev options (default: a file
    node on @cache), e.g. blkdebug over that file.  @base_args: the
    arguments that make node base0 (default: a read-only file node on
    @base).  @log: a file for the daemon's stderr (default: the test's
    output)."""

    def __init__(self, base, cache, instance='a', iothread=False,
                 cache_blockdev=None, base_args=None, log=None, **opts):
        ic = ','.join([f'driver=intellicache,node-name=ic0,file=base0,'
                       f'cache-file=cache0'] +
                      [f'{k.replace("_", "-")}={v}' for k, v in opts.items()])
        extra = ['--object', 'iothread,id=io0'] if iothread else []
        export = 'type=nbd,id=e0,node-name=ic0'
        if iothread:
            export += ',iothread=io0'
        args = [*extra,
                *(base_args or [
                    '--blockdev',
                    f'driver=file,node-name=base0,filename={base},read-only=on']),
                '--blockdev',
                cache_blockdev or f'driver=file,node-name=cache0,filename={cache}',
                '--blockdev', ic,
                '--nbd-server', f'addr.type=unix,addr.path={NBD_SOCK}',
                '--export', export]
        with stderr_to(log) if log else contextlib.nullcontext():
            self.qsd = QemuStorageDaemon(*args, instance_id=instance, qmp=True)

    def stats(self):
        return node_stats(self.qsd)

    def read(self, *commands):
        """Run qemu-io commands against the NBD export."""
        args = []
        for c in commands:
            args += ['-c', c]
        return qemu_io('-r', '-f', 'raw', *args,
                       f'nbd+unix:///ic0?socket={NBD_SOCK}')

    def stop(self):
        self.qsd.stop()


class Profile:
    """A boot profile file, decoded and checked as documented in
    docs/warmup.rst: its header, its entries (cluster index, ms since the
    start of the recording) and its crc32."""

    HEADER = 64

    def __init__(self, path):
        with open(path, 'rb') as f:
            self.data = f.read()
        data = self.data
        assert data[:8] == b'ICPROFIL', data[:8]
        (self.version, self.cluster_size, self.base_size) = \
            struct.unpack_from('<IIQ', data, 8)
        self.fingerprint = data[24:56]
        (count,) = struct.unpack_from('<Q', data, 56)
        end = self.HEADER + 8 * count
        assert len(data) == end + 4, (len(data), count)
        (crc,) = struct.unpack_from('<I', data, end)
        assert zlib.crc32(data[:end]) == crc, 'bad crc32'
        self.entries = [struct.unpack_from('<II', data, self.HEADER + 8 * i)
                        for i in range(count)]

    def clusters(self):
        return [c for c, _ in self.entries]


def wait_event(qsd, name, timeout=30.0):
    """The next event called @name, skipping others."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f'no {name} event within {timeout} s'
        ev = qsd.get_qmp().pull_event(wait=left)
        if ev and ev['event'] == name:
            return ev


def query_job(qsd, job_id):
    for job in qsd.cmd('query-jobs'):
        if job['id'] == job_id:
            return job
    return None


def allocated_bytes(path):
    """Bytes of @path that hold data on the file system (its data extents,
    found with SEEK_DATA/SEEK_HOLE): what a bounded cache must keep within
    cache-size plus its metadata.  Unlike st_blocks, this leaves out the
    file system's own metadata (extent tree blocks of a fragmented file)."""
    total = 0
    with open(path, 'rb') as f:
        fd = f.fileno()
        end = os.fstat(fd).st_size
        pos = 0
        while pos < end:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break  # ENXIO: no data after pos
            hole = os.lseek(fd, data, os.SEEK_HOLE)
            total += hole - data
            pos = hole
    return total


def metadata_bytes(base_size, cluster_size):
    """The header and metadata blocks of a cache of a base of @base_size
    bytes (intellicache-core.h: 4 KiB header, 4 KiB blocks of 32640
    clusters each)."""
    clusters = -(-base_size // cluster_size)
    return 4096 + -(-clusters // ((4096 - 16) * 8)) * 4096
