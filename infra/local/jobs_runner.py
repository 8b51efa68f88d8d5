"""How the local pipeline executor starts a job's process: a fresh interpreter, or a fork.

A SageMaker job runs in its own container; locally each step keeps its own process, so a
script that leaks state, crashes or calls `sys.exit` affects nothing else. A fresh interpreter
spends about two seconds importing pandas, scikit-learn and pandera before it does any work,
which a demo with a dozen jobs a simulated day cannot afford. `ForkServerRunner` starts one
single-threaded server process (`python -m infra.local.jobs_runner`) that imports those
libraries once, then forks a child per job: the child takes the job's argv, environment and
working folder, sends its output to the job's log and runs the script with `runpy`, exactly as
`python -m module` or `python script.py` would, and its exit code is the job's. The server is
our own rather than multiprocessing's fork server, whose children re-import the caller's
`__main__` (a test runner, a CLI) before every job. The kit's own code is deliberately not kept
in the children: a job runs the code bundle its definition names, never the copy the server
imported.

Only the argv shapes a definition produces are forked: `python -m module ...`,
`python script.py ...` and the processing contract `sh -c jobs.RUN_MODULE run-module <bundle>
<module> ...`; anything else runs as a subprocess, so every definition still runs.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import subprocess
import sys
import tarfile
import tempfile
import threading
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol, Self

from infra.pipelines.jobs import RUN_MODULE

PRELOAD = (
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "scipy.stats",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.metrics",
    "pandera.pandas",
    "joblib",
    "boto3",
)
"""Third-party libraries the kit's job scripts import; never `ml_code` (see the docstring)."""
_OWN_PACKAGES = ("ml_code", "infra")
THREAD_LIMITS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""Defaults for every job (the job's own environment wins). On a shared two-core machine an
OpenMP pool spinning against the emulator and the endpoint host made a 0.3 s fit take 30 s;
one thread per job keeps run times steady. A SageMaker instance has its cores to itself."""


class JobRunner(Protocol):
    """Run one job to completion; stdout and stderr go to `log`; return the exit code."""

    def run(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], log: Path) -> int: ...


class SubprocessRunner:
    """A fresh interpreter per job: what a container gives, at the cost of its start-up."""

    def run(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], log: Path) -> int:
        with log.open("wb") as out:
            proc = subprocess.run(
                list(argv),
                cwd=cwd,
                env={**THREAD_LIMITS, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return proc.returncode


@dataclass(frozen=True)
class Job:
    """What a forked child runs: a module or a script, its arguments, where its code comes
    from (a bundle to extract, extra import paths) and its process settings."""

    module: str | None
    script: str | None
    args: tuple[str, ...]
    bundle: str | None = None
    cwd: str = "."
    env: tuple[tuple[str, str], ...] = ()
    log: str = "/dev/null"


def recognise(argv: Sequence[str]) -> Job | None:
    """The job a definition's argv describes, when it is one the fork server can run."""
    argv = list(argv)
    if argv[:3] == ["/bin/sh", "-c", RUN_MODULE] and len(argv) >= 6:
        bundle, module, *rest = argv[4:]
        return Job(module=module, script=None, args=tuple(rest), bundle=bundle)
    if len(argv) >= 2 and _is_python(argv[0]):
        if argv[1] == "-m" and len(argv) >= 3:
            return Job(module=argv[2], script=None, args=tuple(argv[3:]))
        if not argv[1].startswith("-") and argv[1].endswith(".py"):
            return Job(module=None, script=argv[1], args=tuple(argv[2:]))
    return None


def _is_python(program: str) -> bool:
    return program == sys.executable or Path(program).name in ("python", "python3")


class ForkServerRunner:
    """Fork each job from a server that has the heavy libraries imported already.

    Use as a context manager (or call `close()`): the server lives until then. `forked` and
    `spawned` count the jobs that ran each way, for benchmarks and tests.
    """

    def __init__(self, preload: Sequence[str] = PRELOAD) -> None:
        self._preload = list(preload)
        self._server: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._fallback = SubprocessRunner()
        self.forked = 0
        self.spawned = 0

    def start(self) -> None:
        """Start the server now (it imports the preload list once, ~2 s) rather than on the
        first job, so the cost shows up where the caller chooses to pay it."""
        with self._lock:
            self._ensure_server()

    def run(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], log: Path) -> int:
        job = recognise(argv)
        if job is None:
            self.spawned += 1
            return self._fallback.run(argv, cwd, env, log)
        request = {
            **asdict(job),
            "cwd": str(cwd),
            "env": {**THREAD_LIMITS, **env},
            "log": str(log),
        }
        with self._lock:
            server = self._ensure_server()
            assert server.stdin is not None and server.stdout is not None
            server.stdin.write(json.dumps(request).encode() + b"\n")
            server.stdin.flush()
            reply = server.stdout.readline()
            if not reply:
                self._server = None
                raise RuntimeError(f"the job fork server exited (code {server.wait()})")
        self.forked += 1
        return int(json.loads(reply)["exit"])

    def close(self) -> None:
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            assert server.stdin is not None
            server.stdin.close()
            server.wait(timeout=30)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _ensure_server(self) -> subprocess.Popen[bytes]:
        """OpenMP reads its thread count when the server loads it, so the limits go into the
        server's own environment, not only the jobs'."""
        if self._server is None or self._server.poll() is not None:
            self._server = subprocess.Popen(
                [sys.executable, "-m", "infra.local.jobs_runner", *self._preload],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env={**os.environ, **THREAD_LIMITS},
            )
            assert self._server.stdout is not None
            if self._server.stdout.readline().strip() != b"ready":
                raise RuntimeError(
                    f"the job fork server did not start (code {self._server.wait()})"
                )
        return self._server


def serve(preload: Sequence[str], requests: IO[bytes], replies: IO[bytes]) -> None:
    """The server loop: one job request per line in, its exit code out; single-threaded, so
    forking it is safe."""
    for name in preload:
        importlib.import_module(name)
    replies.write(b"ready\n")
    replies.flush()
    for line in requests:
        request: dict[str, Any] = json.loads(line)
        job = Job(
            module=request["module"],
            script=request["script"],
            args=tuple(request["args"]),
            bundle=request["bundle"],
            cwd=request["cwd"],
            env=tuple(request["env"].items()),
            log=request["log"],
        )
        pid = os.fork()
        if pid == 0:
            os._exit(_child(job, replies))
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
        replies.flush()


def _child(job: Job, replies: IO[bytes]) -> int:
    """In the forked child: become the job's process, run its code as `__main__`, and return
    the exit code `python` would have returned."""
    replies.close()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    log = os.open(job.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - the process's own fd
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    try:
        _become(job)
        if job.module is not None:
            sys.argv = [job.module, *job.args]
            runpy.run_module(job.module, run_name="__main__", alter_sys=True)
        elif job.script is not None:
            sys.argv = [job.script, *job.args]
            runpy.run_path(job.script, run_name="__main__")
        code = 0
    except SystemExit as stop:
        code = _exit_code(stop.code)
    except BaseException:  # noqa: BLE001 - report it as the interpreter would, then exit 1
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def _become(job: Job) -> None:
    os.chdir(job.cwd)
    os.environ.clear()
    os.environ.update(dict(job.env))
    for name in [m for m in sys.modules if m.split(".")[0] in _OWN_PACKAGES]:
        del sys.modules[name]
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if job.bundle is not None:
        code = tempfile.mkdtemp(prefix="code-", dir=job.cwd)
        with tarfile.open(job.bundle, mode="r:gz") as archive:
            archive.extractall(code, filter="data")
        paths.insert(0, code)
        os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    if job.script is not None:
        paths.insert(0, str(Path(job.script).resolve().parent))
    sys.path[:0] = paths


def _exit_code(code: object) -> int:
    """`sys.exit(x)`: None is 0, an int is itself, anything else is printed and gives 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    _replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print in the server must not corrupt the reply stream
    serve(sys.argv[1:], sys.stdin.buffer, _replies)
