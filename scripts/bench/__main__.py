"""python3 -m bench: the benchmark (scripts/bench.py starts it this way)."""

import subprocess
import sys

import intellicache_harness as h

from .cli import main

try:
    sys.exit(main())
except KeyboardInterrupt:
    sys.exit(130)
except (h.HarnessError, subprocess.CalledProcessError) as e:
    sys.exit(f"bench: {e}")
