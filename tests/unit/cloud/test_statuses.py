from __future__ import annotations

from modelarts_exporter.cloud.statuses import KNOWN, TERMINAL_PHASES, Phase, status_of


def test_status_names_are_lowercase_without_prefix() -> None:
    assert status_of(8).name == "running"
    assert status_of(10).name == "completed"
    assert status_of(22).name == "mount_failed"
    assert all(not s.name.startswith("jobstat") for s in KNOWN.values())


def test_every_documented_code_has_a_phase() -> None:
    assert sorted(KNOWN) == list(range(23))
    assert {status_of(c).phase for c in (10, 20)} == {Phase.SUCCEEDED}
    assert {status_of(c).phase for c in (12, 13)} == {Phase.STOPPED}
    assert status_of(9).phase is Phase.STOPPING


def test_unrecognized_code_is_counted_not_fatal() -> None:
    status = status_of(42)
    assert (status.name, status.phase) == ("code_42", Phase.UNKNOWN)


def test_terminal_phases() -> None:
    assert {Phase.SUCCEEDED, Phase.FAILED, Phase.STOPPED} == TERMINAL_PHASES
    assert not Phase.RUNNING.terminal and Phase.FAILED.terminal
