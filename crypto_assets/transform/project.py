"""The dbt project beside the package, and its manifest: one per base timeframe.

Which resampled models exist depends on the base timeframe (dbt var `base_timeframe`, decided
at parse time), so each base timeframe gets its own target folder, `dbt_project/target/base_<tf>/`,
holding the manifest Dagster builds the asset graph from and the partial-parse cache dbt
reuses at run time.

The manifest is prepared at install time (`make install` runs `python -m crypto_assets.transform
prepare`), never by `DbtProject.prepare_if_dev()` racing in parallel runs (dagster issue 33993).
As a safety net for a fresh checkout or an edited model, loading the code location prepares it
when it is missing or older than the project's files: under a file lock, into a scratch folder,
then moved into place atomically, so concurrent processes never read half a manifest.

Runs dbt as a subprocess only: dbt itself is never imported here.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from crypto_assets.errors import UserError
from crypto_assets.market import Timeframe
from crypto_assets.transform.dbt_profile import vars_args, warehouse_env

log = logging.getLogger(__name__)

PROJECT_NAME = "dbt_project"
PROJECT_SOURCES = ("dbt_project.yml", "profiles.yml", "models", "macros", "tests")
# dbt subcommands that take no --vars
_NO_VARS = {"clean", "deps", "init", "--version", "-h", "--help"}
_KEEP_INVOCATIONS = 20
BY_HAND = "by_hand"  # where by-hand runs write, beside the per-invocation folders of Dagster runs


def project_dir() -> Path:
    """dbt_project/ at the repository root (editable install), else under the working directory
    (an image that copied the repository and installed the package non-editable)."""
    candidates = [Path(__file__).resolve().parents[2] / PROJECT_NAME, Path.cwd() / PROJECT_NAME]
    for candidate in candidates:
        if (candidate / "dbt_project.yml").exists():
            return candidate
    raise UserError(
        f"the dbt project was not found (looked in {', '.join(map(str, candidates))}): run from the "
        "repository root, or copy dbt_project/ next to the code"
    )


def target_dir(base_timeframe: Timeframe) -> Path:
    return project_dir() / "target" / f"base_{base_timeframe.name}"


def manifest_path(base_timeframe: Timeframe) -> Path:
    return target_dir(base_timeframe) / "manifest.json"


def dbt_executable() -> str:
    beside_python = Path(sys.executable).parent / "dbt"
    return str(beside_python) if beside_python.exists() else shutil.which("dbt") or "dbt"


def dbt_environment(warehouse_url: str, base_timeframe: Timeframe) -> dict[str, str]:
    """Everything a dbt process of this project needs besides os.environ."""
    directory = project_dir()
    return {
        **warehouse_env(warehouse_url),
        "DBT_PROJECT_DIR": str(directory),
        "DBT_PROFILES_DIR": str(directory),
        "DBT_TARGET_PATH": str(target_dir(base_timeframe)),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
    }


def dbt_command(args: Sequence[str], base_timeframe: Timeframe) -> list[str]:
    """`dbt <args>` plus the project's --vars, unless the subcommand takes none or they were given."""
    command = [dbt_executable(), *args]
    if args and args[0] not in _NO_VARS and "--vars" not in args:
        command += vars_args(base_timeframe)
    return command


def run_dbt(
    args: Sequence[str],
    *,
    warehouse_url: str,
    base_timeframe: Timeframe,
    extra_env: dict[str, str] | None = None,
    capture: bool = False,
) -> subprocess.CompletedProcess:
    env = {**os.environ, **dbt_environment(warehouse_url, base_timeframe)}
    # by hand, write beside (not over) the manifest Dagster reads
    env["DBT_TARGET_PATH"] = str(target_dir(base_timeframe) / BY_HAND)
    env.update(extra_env or {})
    return subprocess.run(
        dbt_command(args, base_timeframe),
        env=env,
        cwd=project_dir(),
        text=True,
        capture_output=capture,
        check=False,
    )


def manifest_is_current(base_timeframe: Timeframe) -> bool:
    """The manifest exists and is newer than every file of the dbt project."""
    manifest = manifest_path(base_timeframe)
    if not manifest.exists():
        return False
    built = manifest.stat().st_mtime
    directory = project_dir()
    for name in PROJECT_SOURCES:
        path = directory / name
        files = [path] if path.is_file() else (p for p in path.rglob("*") if p.is_file())
        if any(f.stat().st_mtime > built for f in files):
            return False
    return True


def prepare_manifest(base_timeframe: Timeframe, warehouse_url: str, *, force: bool = False) -> Path:
    """`dbt parse` into target/base_<tf>/ unless the manifest there is current. Safe to call from
    several processes at once: one parses, the others wait for it and reuse its result."""
    from filelock import FileLock

    manifest = manifest_path(base_timeframe)
    if not force and manifest_is_current(base_timeframe):
        return manifest
    target = target_dir(base_timeframe)
    target.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target / ".prepare.lock"), timeout=300):
        if not force and manifest_is_current(base_timeframe):
            return manifest  # another process prepared it while we waited
        started = time.monotonic()
        scratch = Path(tempfile.mkdtemp(prefix=".parse-", dir=target))
        try:
            result = run_dbt(
                ["parse", "--quiet"],
                warehouse_url=warehouse_url,
                base_timeframe=base_timeframe,
                extra_env={"DBT_TARGET_PATH": str(scratch), "DBT_LOG_PATH": str(scratch)},
                capture=True,
            )
            if result.returncode != 0 or not (scratch / "manifest.json").exists():
                detail = (result.stdout + result.stderr).strip().splitlines()
                raise UserError(
                    f"`dbt parse` of {project_dir()} failed: {' | '.join(detail[-5:]) or 'no output'}; "
                    "fix the dbt project, then run `make dbt-parse`"
                )
            # partial_parse first, manifest last: a current manifest implies a matching cache
            for name in ("partial_parse.msgpack", "semantic_manifest.json", "manifest.json"):
                if (scratch / name).exists():
                    os.replace(scratch / name, target / name)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        log.info("prepared %s in %.1f s", manifest, time.monotonic() - started)
    return manifest


def prune_invocations(base_timeframe: Timeframe, keep: int = _KEEP_INVOCATIONS) -> None:
    """Drop all but the newest `keep` per-invocation folders dagster-dbt leaves in the target."""
    target = target_dir(base_timeframe)
    if not target.exists():
        return
    folders = sorted(
        (p for p in target.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != BY_HAND),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for folder in folders[keep:]:
        shutil.rmtree(folder, ignore_errors=True)
