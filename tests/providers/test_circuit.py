"""The channel circuit breaker, against the real Redis server."""

import pytest

from workspace.providers.circuit import ChannelCircuit, CircuitOpen


@pytest.fixture
def circuit(redis_conn) -> ChannelCircuit:  # type: ignore[no-untyped-def]
    return ChannelCircuit(
        redis_conn, channel_id=3, window=60, min_calls=10, threshold=0.5, cooldown=0.2
    )


def test_it_opens_on_a_failure_rate_not_on_single_failures(circuit: ChannelCircuit) -> None:
    for _ in range(6):
        assert circuit.record(ok=True) == "closed"
    for _ in range(3):
        assert circuit.record(ok=False) == "closed"  # 3 of 9, and fewer than 10 calls
    circuit.allow()
    assert circuit.record(ok=False) == "closed"  # 4 of 10: under half
    assert circuit.record(ok=False) == "closed"  # 5 of 11
    assert circuit.record(ok=False) == "opened"  # 6 of 12: half or more
    with pytest.raises(CircuitOpen) as caught:
        circuit.allow()
    assert 0 < caught.value.wait <= 0.2
    assert caught.value.reason == "circuit open"
    assert circuit.state().state == "open"


def _open(circuit: ChannelCircuit) -> None:
    for _ in range(10):
        circuit.record(ok=False)
    assert circuit.state().state == "open"


def _wait_for_probe(circuit: ChannelCircuit) -> None:
    # The cooldown is 0.2 s; ask until a probe may go (bounded).
    for _ in range(200):
        try:
            circuit.allow()
            return
        except CircuitOpen as closed:
            import time

            time.sleep(min(closed.wait, 0.05))
    raise AssertionError("no probe was allowed after the cooldown")


def test_half_open_lets_one_probe_and_closes_on_success(circuit: ChannelCircuit) -> None:
    _open(circuit)
    _wait_for_probe(circuit)
    assert circuit.state().state == "half_open"
    with pytest.raises(CircuitOpen):
        circuit.allow()  # only one probe at a time
    assert circuit.record(ok=True) == "reclosed"  # once: the next success is plain "closed"
    assert circuit.record(ok=True) == "closed"
    circuit.allow()
    assert circuit.state().state == "closed"


def test_a_failed_probe_reopens_for_longer(circuit: ChannelCircuit) -> None:
    _open(circuit)
    _wait_for_probe(circuit)
    assert circuit.record(ok=False) == "reopened"
    with pytest.raises(CircuitOpen) as caught:
        circuit.allow()
    assert caught.value.wait > 0.2  # the cooldown doubled
