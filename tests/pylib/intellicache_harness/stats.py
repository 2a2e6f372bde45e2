"""The intellicache node's counters and state: the one place that reads them.

Every test and benchmark part gets them from node_stats().  Two QMP
schemas are understood, so both an older and a newer daemon work:

- ``query-blockstats`` (with ``query-nodes``): the node's ``driver-specific``
  member, when its ``driver`` is ``intellicache``;
- ``query-named-block-nodes``: the ``format-specific`` member of the node's
  image information, when its ``type`` is ``intellicache``.

When both have data they are merged, ``query-blockstats`` winning for keys
in both, so counters and state may live in either.  Keys keep their QMP
names (``cached-clusters``, ``hit-bytes``, ...).
"""

from .common import HarnessError


def _blockstats_data(qmp, node):
    """driver-specific of @node in query-blockstats, or None."""
    for s in qmp.cmd("query-blockstats", **{"query-nodes": True}):
        if s.get("node-name") == node:
            ds = s.get("driver-specific")
            if ds and ds.get("driver") == "intellicache":
                return {k: v for k, v in ds.items() if k != "driver"}
            return None
    return None


def _format_specific_data(qmp, node):
    """(node found, format-specific data of @node or None)."""
    for n in qmp.cmd("query-named-block-nodes", flat=True):
        if n.get("node-name") == node:
            fs = n.get("image", {}).get("format-specific")
            if fs and fs.get("type") == "intellicache":
                return True, dict(fs["data"])
            return True, None
    return False, None


def node_stats(qmp, node):
    """The counters and state of the intellicache node @node as a dict.

    @qmp is a connection with a cmd(name, **args) method (harness.qmp.QMP).
    Raises HarnessError if there is no such node or it reports nothing.
    """
    driver_specific = _blockstats_data(qmp, node)
    found, format_specific = _format_specific_data(qmp, node)
    if not found:
        raise HarnessError(f"node {node} not found")
    if driver_specific is None and format_specific is None:
        raise HarnessError(f"node {node} reports no intellicache statistics "
                           "(neither query-blockstats nor query-named-block-nodes)")
    result = dict(format_specific or {})
    result.update(driver_specific or {})
    return result
