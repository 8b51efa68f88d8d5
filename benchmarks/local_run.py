"""How long `mlops-kit local run` takes with its defaults (`python benchmarks/local_run.py`).

Runs the whole scenario in this interpreter, as the command does (planning included), in a
temporary run folder, and prints the total wall time, the time per phase and per job kind
(pipeline steps, each a forked process of the job server), and how a job starts: forked from
the preloaded server versus a fresh interpreter, on a trivial job that imports what the
kit's scripts import. Extra arguments are `name=value` settings, e.g. `days=8`.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.local.jobs_runner import ForkServerRunner, SubprocessRunner  # noqa: E402
from infra.local.scenario import ScenarioSettings, run_scenario  # noqa: E402

_PROBE = "import pandas, sklearn.ensemble, pandera.pandas, pyarrow.parquet\n"


def _settings(run_dir: Path, overrides: list[str]) -> ScenarioSettings:
    values: dict[str, object] = {}
    for item in overrides:
        name, _, raw = item.partition("=")
        values[name] = None if raw == "none" else int(raw) if raw.lstrip("-").isdigit() else raw
    return ScenarioSettings(project_dir=ROOT, run_dir=run_dir, **values)  # type: ignore[arg-type]


def _job_start(tmp: Path) -> tuple[float, float]:
    script = tmp / "probe.py"
    script.write_text(_PROBE)
    argv, env, log = [sys.executable, str(script)], dict(os.environ), tmp / "probe.log"
    started = time.perf_counter()
    SubprocessRunner().run(argv, tmp, env, log)
    fresh = time.perf_counter() - started
    with ForkServerRunner() as runner:
        runner.start()
        started = time.perf_counter()
        runner.run(argv, tmp, env, log)
        forked = time.perf_counter() - started
    return fresh, forked


def main(overrides: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        record = run_scenario(_settings(Path(tmp) / "run", overrides))
        total = time.perf_counter() - started
        fresh, forked = _job_start(Path(tmp))
    print(f"total wall time: {total:.1f} s ({record.settings['days']} simulated days)")
    for phase, seconds in record.phases.items():
        print(f"  {phase:<28} {seconds:6.1f} s")
    by_step: dict[str, list[float]] = defaultdict(list)
    for job in record.jobs:
        by_step[job["step"]].append(job["seconds"])
    print("jobs (count, total, mean):")
    for step, times in sorted(by_step.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {step:<16} {len(times):3d} {sum(times):6.1f} s {statistics.mean(times):6.2f} s")
    executions = defaultdict(list)
    for execution in record.executions:
        executions[execution["pipeline"]].append(execution["seconds"])
    print("pipeline executions (count, total, mean, incl. S3 transfers):")
    for pipeline, times in executions.items():
        mean = statistics.mean(times)
        print(f"  {pipeline:<34} {len(times):3d} {sum(times):6.1f} s {mean:5.2f} s")
    print(f"job start: fresh interpreter {fresh:.2f} s, forked from the job server {forked:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
