"""The server catalogue: what each server is asked, in which order."""

from __future__ import annotations

from bench.prepare import ServedModel
from bench.servers import PEER_KEYS, SERVER_KEYS, catalogue
from bench.workloads import WORKLOADS


def test_the_keys_list_every_server_in_run_order(model: ServedModel) -> None:
    assert [server.key for server in catalogue(model)] == list(SERVER_KEYS)
    assert set(PEER_KEYS) <= set(SERVER_KEYS)


def served(model: ServedModel, key: str) -> set[str]:
    server = next(server for server in catalogue(model) if server.key == key)
    return {w.key for w in WORKLOADS if server.serves(w.form.key, w.key)}


def test_each_workload_has_its_own_ceiling(model: ServedModel) -> None:
    ours = served(model, "ours-1")
    ceilings = served(model, "ceiling-1") | served(model, "ceiling-binary-1")
    assert ours == {w.key for w in WORKLOADS}
    assert ceilings == ours
    assert served(model, "ceiling-1").isdisjoint(served(model, "ceiling-binary-1"))


def test_the_peers_are_asked_their_own_protocols(model: ServedModel) -> None:
    assert served(model, "kserve-1") == {"v1-1", "v1-1000", "v2-1", "v2-1000"}
    assert served(model, "mlserver-1") == {"v2-1", "v2-1000"}


def test_two_workers_are_measured_where_scaling_is_read(model: ServedModel) -> None:
    assert served(model, "ours-2") == {"native-1-c32", "native-1000"}
    assert served(model, "ceiling-2") == {"native-1-c32", "native-1000"}
