"""`mlops-kit local run` end to end: a short story on the dev stack's own plan, then checks.

One story (module fixture) runs the loop for a week of simulated days: first model, daily
batches with one corrupt batch, traffic with malformed requests, ground truth a label horizon
later, the daily monitoring run, alarms, the retrain handler, the training gate. A second run
on a copy of the project with other thresholds in `stacks/Pulumi.dev.yaml` shows that the
stack's configuration, not the scenario, decides whether the run retrains. Nothing here waits
on wall-clock time: simulated time is a parameter of every local service.
"""

from __future__ import annotations

import json
import shutil
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
import yaml
from typer.testing import CliRunner

from infra.local import traffic
from infra.local.command import register
from infra.local.defaults import DEFAULT_BAD_BATCH_DAY, DEFAULT_SHIFT_DAY, MIN_HISTORY_DAYS
from infra.local.jobs_runner import ForkServerRunner, recognise
from infra.local.pipeline_executor import split_s3
from infra.local.report import render_html
from infra.local.scenario import (
    DayRecord,
    LocalRun,
    PolicyRefusal,
    RunRecord,
    ScenarioError,
    ScenarioSettings,
    plan_for,
    run_scenario,
)
from infra.local.story import readme_block as story_block
from infra.pipelines.jobs import RUN_MODULE
from ml_code import lineage
from ml_code.features.build import MIN_DATA_DAYS

ROOT = Path(__file__).resolve().parents[2]
BAD_DAY = DEFAULT_BAD_BATCH_DAY
RECOVERY_TOLERANCE = 0.05


@dataclass
class Story:
    record: RunRecord
    checks: dict[str, Any] = field(default_factory=dict)


def _inspect(run: LocalRun, checks: dict[str, Any]) -> None:
    """What only the live emulator and endpoint can show, collected before teardown."""
    s3 = run.s3
    readable = []
    for version in run.record.dataset_versions:
        manifest = lineage.read_manifest(version["manifest"], s3)
        target = run.run_dir / "verify" / manifest.version
        lineage.download_s3_version(manifest, target, s3)  # raises on any changed object
        readable.append(manifest.version)
    checks["readable_versions"] = readable
    bucket, prefix = split_s3(run.layout.dataset_uri)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    checks["raw_keys"] = keys

    url = run.host.url(run._endpoint_name())
    body = traffic.ranking_requests(
        run._accepted_dataset(), run.start, 1, np.random.default_rng(0)
    )[0][1]
    checks["malformed_now"] = [
        traffic.invoke(url, bad, content_type=kind)
        for _, bad, kind in traffic.malformed_requests(body)
    ]
    checks["valid_after"] = traffic.invoke(url, json.dumps(body).encode())
    with urllib.request.urlopen(f"{url}/ping", timeout=10) as ping:
        checks["ping"] = ping.status

    wiring = []
    for result in run.executor.results:
        if result.pipeline_name != run.layout.training_pipeline:
            continue
        splits = None
        for output in result.step("BuildFeatures").properties["ProcessingOutputConfig"]["Outputs"]:
            found = run._read_json(f"{output['S3Output']['S3Uri'].rstrip('/')}/splits.json")
            splits = found if found is not None else splits
        evaluation = None
        for output in result.step("Evaluate").properties["ProcessingOutputConfig"]["Outputs"]:
            uri = f"{output['S3Output']['S3Uri'].rstrip('/')}/evaluation.json"
            found = run._read_json(uri)
            evaluation = found if found is not None else evaluation
        wiring.append(
            {
                "ndcg": evaluation["ranking_metrics"]["ndcg_at_10"]["value"],
                "floor": result.parameters["QualityFloor"],
                "champion": evaluation["champion"]["ndcg_at_10"]["value"],
                "champion_model": result.parameters["ChampionModelUri"],
                "outcome": result.step("CheckQuality").properties["Outcome"],
                "trigger": result.parameters["TriggerReason"],
                "train_cutoffs": (splits or {}).get("train_cutoffs", []),
                "test_cutoffs": (splits or {}).get("test_cutoffs", []),
                "registered": [
                    s.properties.get("ModelPackageArn")
                    for s in result.steps
                    if s.name == "RegisterModel"
                ],
            }
        )
    checks["wiring"] = wiring


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    checks: dict[str, Any] = {}
    # the demo's own story: `make demo` runs exactly these (default) settings
    settings = ScenarioSettings(project_dir=ROOT, run_dir=tmp_path_factory.mktemp("story"))
    record = run_scenario(settings, before_teardown=lambda run: _inspect(run, checks))
    return Story(record, checks)


def _alarm_runs(record: RunRecord) -> list[dict[str, Any]]:
    """Training runs an alarm started, directly or through the re-check while it stayed on."""
    return [
        e
        for e in record.executions
        if e["pipeline"].endswith("-training") and e["trigger"].startswith(("alarm:", "recheck:"))
    ]


def _entered_alarm(record: RunRecord, kind: str) -> list[int]:
    return [
        a["day"]
        for a in record.alarm_transitions
        if a["to"] == "ALARM" and a["alarm"].endswith(f"-{kind}")
    ]


def test_drift_fires_after_the_shift_never_before_and_one_retrain_follows(story: Story) -> None:
    record = story.record
    drift = _entered_alarm(record, "drift")
    assert drift and min(drift) > DEFAULT_SHIFT_DAY, "drift measures change, not noise"
    assert not _entered_alarm(record, "invocations"), "the endpoint served every day"
    assert len(_alarm_runs(record)) == 1
    assert [e for e in record.executions if e["pipeline"].endswith("-training")][1:] == (
        _alarm_runs(record)
    ), "no other retrain (the dev schedule is monthly)"
    # drift shows before any purchase after the shift is labelled: no run for that yet
    early = [r for r in record.retrain_requests if r["day"] < _alarm_runs(record)[0]["day"]]
    assert any(r["reason"].startswith("too early") for r in early)


def test_the_alarm_started_run_trains_and_is_judged_on_days_after_the_shift(story: Story) -> None:
    first, retrain = story.checks["wiring"]
    assert retrain["trigger"].startswith(("alarm:", "recheck:"))
    shift = story.record.shift_date
    assert max(retrain["train_cutoffs"]) >= shift and min(retrain["test_cutoffs"]) >= shift
    assert max(first["train_cutoffs"]) < shift


def test_the_retrain_beats_the_champion_and_quality_recovers_to_its_pre_shift_level(
    story: Story,
) -> None:
    record = story.record
    first, retrained = record.models
    assert retrained["trigger"].startswith(("alarm:", "recheck:"))
    assert retrained["status"] == "Approved"
    assert retrained["ndcg_at_10"] > retrained["champion_ndcg_at_10"] + 0.05
    deployed = [d for d in record.deployments if d["switched"] and d["day"] is not None]
    assert [d["to"].rsplit("-v", 1)[-1] for d in deployed] == [str(retrained["version"])]

    def quality(version: int, after_shift: bool) -> list[float]:
        served = {d.date: d.serving_version for d in record.days}
        return [
            d.ndcg_at_10
            for d in record.days
            if d.ndcg_at_10 is not None
            and served.get(d.monitored_day) == version
            and (d.monitored_day >= record.shift_date) is after_shift
        ]

    degraded = quality(first["version"], after_shift=True)
    recovered = quality(retrained["version"], after_shift=True)
    assert degraded and recovered
    pre_shift = first["ndcg_at_10"]  # the first model on held-out rows before the change
    assert mean(recovered) >= pre_shift * (1 - RECOVERY_TOLERANCE)
    assert mean(recovered) > mean(degraded) + 0.1


def test_drift_clears_once_the_retrained_model_serves(story: Story) -> None:
    record = story.record
    (deployed,) = [d for d in record.deployments if d["switched"] and d["day"] is not None]
    cleared = [
        a["day"]
        for a in record.alarm_transitions
        if a["alarm"].endswith("-drift") and a["from"] == "ALARM" and a["day"] >= deployed["day"]
    ]
    assert cleared, "the new model's baseline is the world after the change"


def test_the_readme_tells_the_default_story_figure_for_figure(story: Story) -> None:
    readme = (ROOT / "README.md").read_text()
    block = story_block(story.record)
    assert block in readme, f"regenerate the README's story from the default run:\n{block}"


def test_the_bad_batch_is_quarantined_and_nothing_serving_or_stored_changes(story: Story) -> None:
    record = story.record
    bad = record.days[BAD_DAY]
    assert bad.batch == "quarantined" and bad.dataset_version is None
    (quarantined,) = record.quarantined
    assert quarantined["day"] == BAD_DAY
    assert any("price" in failure for failure in quarantined["failures"])
    assert any(failure.startswith("interactions.item_id") for failure in quarantined["failures"])
    accepted = [d for d in record.days if d.batch == "accepted"]
    assert len(record.dataset_versions) == 1 + len(accepted)
    # what served on the bad day serves the next day: the batch deployed nothing
    assert record.days[BAD_DAY + 1].serving_version == record.days[BAD_DAY].serving_version
    assert not [d for d in record.deployments if d["day"] == BAD_DAY]
    assert story.checks["readable_versions"] == [v["version"] for v in record.dataset_versions]
    assert not [k for k in story.checks["raw_keys"] if f"date={bad.date}" in k]


def test_malformed_requests_get_4xx_while_the_endpoint_keeps_serving(story: Story) -> None:
    for day in story.record.days:
        assert day.malformed and all(400 <= int(status) < 500 for status in day.malformed)
        assert day.statuses == {"200": day.requests}
    assert all(400 <= status < 500 for status in story.checks["malformed_now"])
    assert story.checks["valid_after"] == 200
    assert story.checks["ping"] == 200


def test_the_gate_reads_the_value_the_evaluate_step_wrote(story: Story) -> None:
    first, *later = story.checks["wiring"]
    models = {m["arn"]: m for m in story.record.models}
    (registered,) = first["registered"]
    assert first["outcome"] is True
    assert models[registered]["ndcg_at_10"] == pytest.approx(first["ndcg"])
    assert first["champion"] == 0.0, "no champion before the first approval"
    champion = registered
    for run in later:
        expected = run["ndcg"] >= run["floor"] and run["ndcg"] >= run["champion"]
        assert run["outcome"] is expected
        assert bool(run["registered"]) is expected
        assert run["champion_model"] == models[champion]["model_data_url"]
        champion = run["registered"][0] if run["registered"] else champion


def _project_copy(tmp: Path, drift: float, quality: float) -> Path:
    project = tmp / "project"
    for name in ("Pulumi.yaml", "stacks", "policies"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, project / name)
    config_path = project / "stacks" / "Pulumi.dev.yaml"
    config = yaml.safe_load(config_path.read_text())
    for model in config["config"]["mlops:models"]:
        model["driftThreshold"], model["qualityAlarmThreshold"] = drift, quality
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return project


def test_the_stack_thresholds_decide_whether_the_run_retrains(story: Story, tmp_path: Path) -> None:
    project = _project_copy(tmp_path, drift=10.0, quality=10.0)
    retrain_day = _alarm_runs(story.record)[0]["day"]
    settings = ScenarioSettings(project_dir=project, run_dir=tmp_path / "run", days=retrain_day + 1)
    record = run_scenario(settings)
    assert len(_alarm_runs(story.record)) == 1
    assert _alarm_runs(record) == []
    assert not [a for a in record.alarm_transitions if a["to"] == "ALARM" and "drift" in a["alarm"]]
    drift_seen = [d.drift_max_psi for d in record.days if d.drift_max_psi is not None]
    assert drift_seen and max(drift_seen) < 10.0


def test_a_history_too_short_to_train_on_is_refused_with_the_days_it_needs() -> None:
    assert MIN_HISTORY_DAYS == MIN_DATA_DAYS, "the CLI's --history-days bound"
    with pytest.raises(ScenarioError, match=f"--history-days {MIN_DATA_DAYS} or more"):
        ScenarioSettings(project_dir=ROOT, history_days=MIN_DATA_DAYS - 1)


def test_a_stack_with_mandatory_policy_violations_is_refused_before_anything_runs() -> None:
    plan = {
        "resources": [],
        "policy": {
            "pack": "mlops-guardrails",
            "version": "0.0.1",
            "stack": "dev",
            "environment": "dev",
            "mandatoryCount": 1,
            "advisoryCount": 0,
            "violations": [
                {
                    "enforcementLevel": "mandatory",
                    "message": "S3 buckets must be encrypted with the platform key",
                    "policyName": "s3-encryption",
                    "remediation": "set the bucket's key",
                    "urn": "urn:pulumi:dev::mlops::aws:s3/bucket:Bucket::raw",
                }
            ],
        },
    }
    with pytest.raises(PolicyRefusal, match="1 mandatory policy violation"):
        plan_for(ScenarioSettings(project_dir=ROOT, plan=plan), lambda _: None)


# -- pieces of the story, as plain functions --------------------------------------------------


def test_ground_truth_has_one_label_per_candidate_in_request_order() -> None:
    sent = [traffic.SentRequest("id-1", pd.Timestamp("2026-03-02").date(), "C1", ("I1", "I2"))]
    purchases = pd.DataFrame(
        {
            "customer_id": ["C1", "C1", "C2"],
            "item_id": ["I2", "I1", "I1"],
            "event_time": pd.to_datetime(
                ["2026-03-05T10:00Z", "2026-03-09T10:00Z", "2026-03-03T10:00Z"]
            ),
        }
    )
    (line,) = traffic.ground_truth_lines(sent, purchases)
    record = json.loads(line)
    assert record["groundTruthData"] == {"data": "0,1", "encoding": "CSV"}
    assert record["eventMetadata"]["inferenceId"] == "id-1"


@pytest.fixture(scope="module")
def job_server() -> Iterator[ForkServerRunner]:
    with ForkServerRunner(preload=("json",)) as runner:
        yield runner


def test_a_forked_job_gets_its_argv_environment_folder_and_exit_code(
    job_server: ForkServerRunner, tmp_path: Path
) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        "import os, sys, pathlib\n"
        "pathlib.Path('seen.txt').write_text(' '.join(sys.argv[1:]) + '|' + os.environ['X'])\n"
        "print('to the log')\n"
        "sys.exit(3)\n"
    )
    log = tmp_path / "job.log"
    code = job_server.run([sys.executable, str(script), "--a", "1"], tmp_path, {"X": "y"}, log)
    assert code == 3
    assert (tmp_path / "seen.txt").read_text() == "--a 1|y"
    assert "to the log" in log.read_text()


def test_a_failing_forked_job_reports_its_traceback_and_the_server_keeps_serving(
    job_server: ForkServerRunner, tmp_path: Path
) -> None:
    script = tmp_path / "boom.py"
    script.write_text("raise RuntimeError('bad batch')\n")
    log = tmp_path / "boom.log"
    assert job_server.run([sys.executable, str(script)], tmp_path, {}, log) == 1
    assert "RuntimeError: bad batch" in log.read_text()
    ok = tmp_path / "ok.py"
    ok.write_text("pass\n")
    assert job_server.run([sys.executable, str(ok)], tmp_path, {}, tmp_path / "ok.log") == 0


def test_only_the_argv_shapes_of_a_definition_are_forked() -> None:
    module_job = recognise(["/bin/sh", "-c", RUN_MODULE, "run-module", "/b.tgz", "m.n", "--x"])
    assert module_job is not None
    assert (module_job.bundle, module_job.module, module_job.args) == ("/b.tgz", "m.n", ("--x",))
    assert recognise(["python3", "-m", "pkg.mod", "a"]) is not None
    assert recognise(["/bin/sh", "-c", "echo hi"]) is None
    assert recognise(["java", "-jar", "x.jar"]) is None


def test_the_report_plots_each_series_and_marks_the_shift_and_the_retrain() -> None:
    record = RunRecord(
        "dev",
        {},
        start_date="2026-03-01",
        shift_date="2026-03-02",
        alarms=[
            {"name": "d", "metric": "feature_drift_max_psi", "comparison": "", "threshold": 0.2},
            {"name": "q", "metric": "quality_shortfall_z", "comparison": "", "threshold": 2.0},
        ],
        executions=[
            {"day": 3, "trigger": "alarm:d:crossed", "status": "Failed", "pipeline": "t"},
        ],
        days=[
            DayRecord(
                i,
                f"2026-03-0{i + 1}",
                monitored_day=f"2026-03-0{i + 1}",
                drift_psi={"views_28d": 0.1 * i, "price": 0.05},
                ndcg_at_10=0.4 - 0.05 * i,
                quality_shortfall_z=0.8 * i,
                alarms={"d": "ALARM" if i > 1 else "OK"},
            )
            for i in range(4)
        ],
    )
    page = render_html(record)
    assert page.count("<svg") == 4
    assert page.count("<polyline") == 4  # two drift features, NDCG@10, the shortfall
    assert page.count("alarm threshold") == 2
    assert "retrain (alarm): rejected" in page and ">shift<" in page
    assert page.count("fill='#d62728'><title>") == 2  # two days in ALARM on the timeline


def test_local_run_is_a_command_of_the_cli() -> None:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """The kit's CLI."""

    register(app)
    result = CliRunner().invoke(app, ["local", "run", "--help"])
    assert result.exit_code == 0
    for option in ("--stack", "--days", "--shift-day", "--seed", "--scenario", "--no-bad-batch"):
        assert option in result.output
