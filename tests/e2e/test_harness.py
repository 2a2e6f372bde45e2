"""The harness's reading of the intellicache node's counters.

node_stats() understands the driver-specific member of query-blockstats
and the format-specific member of query-named-block-nodes; these tests
feed it canned QMP answers of both shapes (no daemon needed), so that
the newer schema is covered before a daemon provides it.
"""

import unittest

import intellicache_harness as h


class FakeQMP:
    """Answers query-blockstats and query-named-block-nodes from lists."""

    def __init__(self, blockstats, named_nodes):
        self.answers = {"query-blockstats": blockstats,
                        "query-named-block-nodes": named_nodes}
        self.calls = []

    def cmd(self, name, **args):
        self.calls.append((name, args))
        return self.answers[name]


def named(node, data=None, kind="intellicache"):
    image = {"virtual-size": 1 << 20}
    if data is not None:
        image["format-specific"] = {"type": kind, "data": data}
    return {"node-name": node, "drv": kind, "image": image}


def blockstats(node, data=None, driver="intellicache"):
    entry = {"node-name": node, "stats": {"rd_bytes": 0}}
    if data is not None:
        entry["driver-specific"] = dict(data, driver=driver)
    return entry


class NodeStatsTest(unittest.TestCase):
    def test_format_specific_only(self):
        qmp = FakeQMP([blockstats("base0"), blockstats("ic0")],
                      [named("base0", kind="file"), named("ic0", {"hit-bytes": 5})])
        self.assertEqual(h.node_stats(qmp, "ic0"), {"hit-bytes": 5})
        self.assertIn(("query-blockstats", {"query-nodes": True}), qmp.calls)

    def test_driver_specific_only(self):
        qmp = FakeQMP([blockstats("ic0", {"hit-bytes": 7, "cached-clusters": 2})],
                      [named("ic0")])
        self.assertEqual(h.node_stats(qmp, "ic0"), {"hit-bytes": 7, "cached-clusters": 2})

    def test_both_merged_blockstats_first(self):
        qmp = FakeQMP([blockstats("ic0", {"hit-bytes": 9})],
                      [named("ic0", {"hit-bytes": 1, "cluster-size": 4096})])
        self.assertEqual(h.node_stats(qmp, "ic0"), {"hit-bytes": 9, "cluster-size": 4096})

    def test_other_driver_ignored(self):
        qmp = FakeQMP([blockstats("ic0", {"discard-nb-ok": 0}, driver="file")],
                      [named("ic0", {"hit-bytes": 3})])
        self.assertEqual(h.node_stats(qmp, "ic0"), {"hit-bytes": 3})

    def test_missing_node_or_data(self):
        with self.assertRaises(h.HarnessError):
            h.node_stats(FakeQMP([], [named("ic0", {})]), "other")
        with self.assertRaises(h.HarnessError):
            h.node_stats(FakeQMP([blockstats("b")], [named("b", kind="file")]), "b")


class NodesTest(unittest.TestCase):
    """The base node options the tests, the demo and the benchmarks use."""

    def test_nbd_base_sets_reconnect_delay(self):
        self.assertEqual(h.nbd_base("/run/b.sock"),
                         {"driver": "nbd", "server": {"type": "unix", "path": "/run/b.sock"},
                          "reconnect-delay": h.RECONNECT_DELAY})
        self.assertGreater(h.RECONNECT_DELAY, 0)

    def test_nbd_base_tcp_export_and_no_delay(self):
        self.assertEqual(h.nbd_base(host="10.200.0.2", port=10809, export="ic0",
                                    reconnect_delay=0),
                         {"driver": "nbd", "export": "ic0",
                          "server": {"type": "inet", "host": "10.200.0.2", "port": "10809"}})


if __name__ == "__main__":
    unittest.main()
