"""Image files: seeded random bases, cache files, qcow2 overlays, hashes."""

import hashlib
import os
import random
import subprocess
from pathlib import Path

from .common import MiB, qemu_binary, qemu_env


def write_random(f, size, seed):
    """Write @size bytes of seeded pseudo-random data to the open file @f;
    return the sha256 object of what was written."""
    rng = random.Random(seed)
    digest = hashlib.sha256()
    left = size
    while left:
        chunk = rng.randbytes(min(left, MiB))
        digest.update(chunk)
        f.write(chunk)
        left -= len(chunk)
    return digest


def make_base_image(path, size, seed):
    """Write @size bytes of seeded pseudo-random data to @path; return sha256.

    The content is incompressible and reproducible for a given seed.
    """
    with open(path, "wb") as f:
        return write_random(f, size, seed).hexdigest()


def overwrite_in_place(path, seed):
    """Replace the content of @path (same size, same inode); return sha256."""
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        digest = write_random(f, size, seed)
        f.flush()
        os.fsync(f.fileno())
    return digest.hexdigest()


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def create_cache_file(path):
    """An empty cache file, mode 0600, as the driver expects before start."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    return Path(path)


def qcow2_overlay(path, size):
    """An empty qcow2 image of @size bytes (qemu-img create)."""
    subprocess.run([str(qemu_binary("qemu-img")), "create", "-q", "-f", "qcow2",
                    str(path), str(size)], check=True, env=qemu_env(), timeout=60)
    return Path(path)


def allocated_bytes(path):
    """Bytes of @path that hold data on the file system (its data extents,
    found with SEEK_DATA/SEEK_HOLE): what a bounded cache keeps within
    cache-size plus its metadata.  Unlike st_blocks, this leaves out the
    file system's own metadata (the extent tree of a fragmented file)."""
    total = 0
    with open(path, "rb") as f:
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
