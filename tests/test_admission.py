"""The bounds that shed load: what they admit, and what stops counting (pure logic; a shed request
over real HTTP is in tests/test_lanes.py, the rates a process then holds in bench/load.py)."""

from __future__ import annotations

from docassist.pipelines.admission import RECENT_S, InFlight


def test_past_the_limit_the_next_request_is_refused_until_one_ends():
    gate = InFlight(2)
    first, second = gate.admit(now=0.0), gate.admit(now=0.1)
    assert first is not None and second is not None
    assert gate.admit(now=0.2) is None and gate.shed == 1
    gate.done(first)
    assert gate.admit(now=0.3) is not None


def test_a_request_running_longer_than_the_window_no_longer_counts():
    """A stream or an answer waiting for the LLM's slot stops holding a place after RECENT_S."""
    gate = InFlight(1)
    stream = gate.admit(now=0.0)
    assert stream is not None and gate.admit(now=RECENT_S / 2) is None
    late = gate.admit(now=RECENT_S + 0.01)
    assert late is not None
    gate.done(stream)  # ending after it stopped counting frees nothing twice
    assert gate.admit(now=RECENT_S + 0.02) is None and gate.shed == 2


def test_shedding_is_reported_once_a_second_with_the_count_since_the_last_report():
    gate = InFlight(1)
    gate.admit(now=0.0)
    for i in range(5):
        gate.admit(now=0.1 + i / 100)
    assert gate.unreported(now=0.2) == 5
    gate.admit(now=0.3)
    assert gate.unreported(now=0.5) is None, "within the second: no line"
    assert gate.unreported(now=1.3) == 1


def test_one_caller_holds_half_the_places_while_others_are_about_and_all_of_them_alone():
    """A key flooding the service is shed past its half once another key asks; alone, it is not."""
    gate = InFlight(4)
    alone = [gate.admit("attacker", now=0.0) for _ in range(4)]
    assert None not in alone and gate.admit("attacker", now=0.0) is None, "alone: every place, then the bound"
    for ticket in alone[2:]:
        gate.done(ticket)
    assert gate.admit("victim", now=0.1) is not None
    assert gate.admit("attacker", now=0.1) is None, "another caller is about: half the places at most"
    assert gate.admit("", now=0.1) is not None, "no credential: only the whole bound"
    assert gate.admit("victim", now=0.2) is None, "the whole bound: four running"
    gate.done(alone[0])
    assert gate.admit("attacker", now=0.3) is not None
    gate.done(alone[1])
    assert gate.admit("attacker", now=0.2 + 3 * RECENT_S) is not None, "the victim long gone: no share"
