"""Seeded simulations of the consensus machine: agreement always, progress once stable."""

from __future__ import annotations

import os

import pytest

from danangchain.validators import ValidatorSet
from tests.simulation.harness import SafetyViolation, Scenario, Simulation

SEEDS = range(int(os.environ.get("DANANGCHAIN_SIM_SEEDS", "300")))


def scenario_for(seed: int) -> Scenario:
    """Spread seeds over network sizes and fault mixes (f Byzantine at most)."""
    kind = seed % 4
    if kind == 0:
        return Scenario(validators=4, byzantine=1, untimely=0.25)
    if kind == 1:
        return Scenario(validators=4, byzantine=0, drop=0.2)
    if kind == 2:
        return Scenario(validators=7, byzantine=2, chaos_ms=6000, untimely=0.25)
    return Scenario(validators=1 + seed % 3, byzantine=0)


def run_and_check(seed: int, scenario: Scenario) -> Simulation:
    simulation = Simulation(seed, scenario).run()
    if not simulation.done():
        heights = {n.index: n.height for n in simulation.correct()}
        raise AssertionError(
            simulation.report(
                f"no progress after stabilising: heights {heights}, "
                f"at stabilisation {simulation.stable_heights}"
            )
        )
    return simulation


@pytest.mark.simulation
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_validators_agree_and_progress(seed: int) -> None:
    run_and_check(seed, scenario_for(seed))


@pytest.mark.simulation
def test_seed_from_environment_reproduces_a_run() -> None:
    seed = int(os.environ.get("DANANGCHAIN_SIM_SEED", "7"))
    first = run_and_check(seed, scenario_for(seed))
    second = run_and_check(seed, scenario_for(seed))
    assert first.nodes[0].committed_hashes() == second.nodes[0].committed_hashes()
    assert list(first.trace) == list(second.trace)


def exactly_two_thirds(validator_set: ValidatorSet) -> int:
    """A deliberately broken quorum: 2/3 of the power rounded down, not more than 2/3."""
    return validator_set.total_power * 2 // 3


@pytest.mark.simulation
def test_a_broken_quorum_rule_is_caught_by_some_seed() -> None:
    """A machine that counts exactly 2/3 as a quorum is caught: either two correct nodes
    commit different blocks, or the nodes' ledgers refuse the thin certificates it makes
    (a block carrying one is invalid) and the network stops making progress."""
    scenario = Scenario(validators=4, byzantine=1, drop=0.0, chaos_ms=8000)
    caught = []
    for seed in range(60):
        try:
            simulation = Simulation(seed, scenario, quorum=exactly_two_thirds).run()
        except SafetyViolation as violation:
            assert f"seed {seed}" in str(violation)
            caught.append(seed)
            break
        if not simulation.done():
            assert simulation.counts.get("invalid block", 0) > 0, simulation.counts
            caught.append(seed)
            break
    assert caught, "no seed found the broken quorum"
