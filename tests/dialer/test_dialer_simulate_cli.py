"""Scenarios, the simulator and ``pilotdial simulate``."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from dialer.cli import register
from dialer.exceptions import ScenarioError
from dialer.pacing import ProgressivePolicy
from dialer.scenario import parse_scenario
from dialer.simulator import Simulation

REQUIRED_KEYS = {
    "dials",
    "live_answers",
    "machine_answers",
    "no_answers",
    "busy",
    "abandoned",
    "abandon_rate",
    "occupancy",
    "agent_idle_mean_s",
    "contacts_per_agent_hour",
}
SHORT = {"duration_s": 1800, "agents": 5, "seed": 4}


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"agentz": 3}, "agentz"),
        ({"agents": -1}, "agents"),
        ({"agents": 2.5}, "agents"),
        ({"mode": "turbo"}, "mode"),
        ({"answer_probability": 1.5}, "answer_probability"),
        ({"answer_probability": [{"from_s": 0, "p": 2}]}, "answer_probability[0].p"),
        ({"answer_probability": [{"from_s": 0, "q": 0.2}]}, "answer_probability[0].q"),
        ({"ring_time_s": {"dist": "gamma", "mean": 3}}, "ring_time_s.dist"),
        ({"talk_time_s": {"dist": "lognormal", "mean": 3}}, "talk_time_s.sd"),
        ({"wrap_time_s": {"dist": "fixed", "value": -2}}, "wrap_time_s.value"),
        ({"duration_s": 0}, "duration_s"),
        ({"machine_probability": 0.9}, "machine_probability"),
        ({"agents": 0, "mode": "predictive"}, "agents"),
    ],
)
def test_bad_scenarios_name_the_key(raw, key):
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(raw)
    assert caught.value.key == key
    assert repr(key) in str(caught.value)


def test_same_seed_same_day_and_result_keys():
    scenario = parse_scenario(SHORT)
    first = Simulation(scenario).run().to_dict()
    assert first == Simulation(scenario).run().to_dict()
    assert set(first) >= REQUIRED_KEYS
    resolved = (
        first["live_answers"]
        + first["machine_answers"]
        + first["no_answers"]
        + first["busy"]
        + first["failed"]
    )
    # Every dial is resolved except the few still ringing when the day ends.
    assert 0 <= first["dials"] - resolved <= 3 * first["agents"]
    assert 0.0 < first["occupancy"] <= 1.0


def test_progressive_never_abandons_and_predictive_is_busier():
    scenario = parse_scenario({**SHORT, "duration_s": 3600, "agents": 10})
    progressive = Simulation(scenario, ProgressivePolicy()).run()
    predictive = Simulation(scenario).run()
    assert progressive.abandoned == 0
    assert predictive.occupancy > progressive.occupancy
    assert predictive.abandon_rate <= 0.03


def test_modes_preview_power_and_agentless():
    preview = Simulation(parse_scenario({**SHORT, "mode": "preview"})).run()
    assert preview.abandoned == 0
    assert preview.connected > 0
    # Power dials more than progressive, as far as the abandon-cap clamp lets it.
    progressive = Simulation(parse_scenario({**SHORT, "mode": "progressive"})).run()
    power = Simulation(parse_scenario({**SHORT, "mode": "power", "power_ratio": 3})).run()
    assert power.dials > progressive.dials
    assert power.abandon_rate <= 0.03
    agentless = Simulation(
        parse_scenario({**SHORT, "mode": "agentless", "agents": 0, "agentless_lines": 8})
    ).run()
    assert agentless.interviews_completed > 0
    assert agentless.abandoned == 0
    assert agentless.occupancy == 0.0


def test_machine_answers_never_count_as_live():
    result = Simulation(
        parse_scenario(
            {
                **SHORT,
                "answer_probability": 0.0,
                "machine_probability": 0.5,
                "amd_policy": "leave_message",
            }
        )
    ).run()
    assert result.live_answers == 0
    assert result.machine_answers > 0
    assert result.abandon_rate == 0.0


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps Typer from collapsing the group
        """Nothing."""

    return app


def test_cli_simulate_json(tmp_path):
    path = tmp_path / "day.json"
    path.write_text(json.dumps(SHORT))
    result = CliRunner().invoke(_app(), ["simulate", str(path), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert set(figures) >= REQUIRED_KEYS
    assert figures["agents"] == 5


def test_cli_simulate_table_with_policy(tmp_path):
    path = tmp_path / "day.json"
    path.write_text(json.dumps(SHORT))
    result = CliRunner().invoke(
        _app(), ["simulate", str(path), "--policy", "dialer.pacing:ProgressivePolicy"]
    )
    assert result.exit_code == 0, result.output
    assert "ProgressivePolicy" in result.stdout
    assert "abandon rate" in result.stdout


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ('{"agents": 3, "colour": 1}', [], "'colour'"),
        ("{not json", [], "not valid JSON"),
        ('{"agents": 3}', ["--policy", "nowhere:Thing"], "cannot import module"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(tmp_path, content, args, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = CliRunner().invoke(_app(), ["simulate", str(path), *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_missing_file(tmp_path):
    result = CliRunner().invoke(_app(), ["simulate", str(tmp_path / "none.json")])
    assert result.exit_code == 2
    assert "cannot read" in result.stderr
