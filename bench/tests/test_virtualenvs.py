"""A peer's virtualenv: reused while its pins are unchanged; a failed build says why and
leaves nothing that passes for a built virtualenv."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.peers.pins import PEERS, PeerPins, Pin
from bench.peers.virtualenvs import (
    FREEZE,
    STAMP,
    PeerUnavailable,
    ensure_virtualenv,
    installed_versions,
)


def test_a_virtualenv_with_the_same_pins_is_reused(tmp_path: Path) -> None:
    peer = PeerPins("peer", (Pin("some-package==1.0", "a reason"),))
    python = tmp_path / "peer" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    (tmp_path / "peer" / STAMP).write_text("some-package==1.0\n")
    assert ensure_virtualenv(peer, tmp_path) == python
    assert python.read_text() == ""  # not rebuilt


def test_a_failed_install_says_why_and_leaves_no_stamp(tmp_path: Path) -> None:
    # An invalid requirement: pip refuses it before asking any index.
    peer = PeerPins("broken", (Pin("not a requirement!!", "to fail"),))
    with pytest.raises(PeerUnavailable, match=r"pip install failed with exit code \d+: .*ERROR"):
        ensure_virtualenv(peer, tmp_path)
    assert not (tmp_path / "broken" / STAMP).exists()
    assert (tmp_path / "broken-install.log").exists()


def test_versions_are_read_from_the_freeze_taken_at_build(tmp_path: Path) -> None:
    python = tmp_path / "peer" / "bin" / "python"
    python.parent.mkdir(parents=True)
    (tmp_path / "peer" / FREEZE).write_text("FastAPI==0.115.14\nnumpy==2.4.6\nother==1\n")
    assert installed_versions(python, ("fastapi", "numpy", "uvicorn")) == {
        "fastapi": "0.115.14",
        "numpy": "2.4.6",
    }


@pytest.mark.parametrize("peer", PEERS, ids=lambda p: p.name)
def test_every_pin_is_exact_and_has_a_reason(peer: PeerPins) -> None:
    assert peer.version
    for pin in peer.pins:
        name, separator, version = pin.requirement.partition("==")
        assert name
        assert separator
        assert version
        assert pin.reason
