"""The dbt project beside the package, set up for one base timeframe: `DbtSetup`.

Which resampled models exist depends on the base timeframe (dbt var `base_timeframe`, decided
at parse time), so each base timeframe gets its own target folder, `dbt_project/target/base_<tf>/`,
holding the manifest Dagster builds the asset graph from and the partial-parse cache dbt
reuses at run time.

The manifest is prepared at install time (`make install` runs `python -m crypto_assets.transform
prepare`), never by `DbtProject.prepare_if_dev()` racing in parallel runs (dagster issue 33993).
As a safety net for a fresh checkout or an edited model, loading the code location prepares it
when it is missing or older than the project's files: under a file lock, into a scratch folder,
then moved into place atomically, so concurrent processes never read half a manifest.

Every dbt process gets the warehouse in its own environment, never through this process's
`os.environ`: by hand through `subprocess`, under Dagster through the launcher
(crypto_assets.transform.launcher). dbt itself is never imported here.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from crypto_assets.errors import UserError
from crypto_assets.market import Timeframe
from crypto_assets.transform.dbt_profile import warehouse_env
from crypto_assets.transform.launcher import LAUNCHER, dbt_executable, launcher_executable, write_handoff

if TYPE_CHECKING:
    from dagster import AssetExecutionContext
    from dagster_dbt import DbtCliInvocation, DbtCliResource, DbtProject

log = logging.getLogger(__name__)

PROJECT_NAME = "dbt_project"
PROJECT_SOURCES = ("dbt_project.yml", "profiles.yml", "models", "macros", "tests")
PARTIAL_PARSE = "partial_parse.msgpack"
# dbt subcommands that take no --vars
_NO_VARS = {"clean", "deps", "init", "--version", "-h", "--help"}
_KEEP_INVOCATIONS = 20
BY_HAND = "by_hand"  # where by-hand runs write, beside the per-invocation folders of Dagster runs


def find_project_dir() -> Path:
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


@dataclass(frozen=True)
class DbtSetup:
    """The dbt project as one base timeframe runs it: its folders and manifest, the vars every
    invocation passes, and the environment that points dbt's profile at a warehouse."""

    base_timeframe: Timeframe
    project_dir: Path = field(default_factory=find_project_dir)

    @property
    def target_dir(self) -> Path:
        return self.project_dir / "target" / f"base_{self.base_timeframe.name}"

    @property
    def manifest_path(self) -> Path:
        return self.target_dir / "manifest.json"

    @property
    def by_hand_dir(self) -> Path:
        return self.target_dir / BY_HAND

    @property
    def vars(self) -> dict[str, str]:
        """The dbt vars every invocation passes (dbt_project.yml documents them)."""
        return {"base_timeframe": self.base_timeframe.name}

    def with_vars(self, args: Sequence[str]) -> list[str]:
        """`args` plus the project's --vars, unless the subcommand takes none or they were given."""
        if args and args[0] not in _NO_VARS and "--vars" not in args:
            return [*args, "--vars", json.dumps(self.vars)]
        return list(args)

    def environment(self, warehouse_url: str) -> dict[str, str]:
        """What a by-hand dbt process of this project needs besides os.environ: the profile's
        variables for `warehouse_url`, the project, and a target beside (not over) the manifest."""
        return {
            **warehouse_env(warehouse_url),
            "DBT_PROJECT_DIR": str(self.project_dir),
            "DBT_PROFILES_DIR": str(self.project_dir),
            "DBT_TARGET_PATH": str(self.by_hand_dir),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DO_NOT_TRACK": "1",
        }

    def command(self, args: Sequence[str]) -> list[str]:
        return [dbt_executable(), *self.with_vars(args)]

    def run(
        self,
        args: Sequence[str],
        warehouse_url: str,
        *,
        extra_env: dict[str, str] | None = None,
        capture: bool = False,
    ) -> subprocess.CompletedProcess:
        """`dbt <args>` by hand, on the warehouse at `warehouse_url`."""
        env = {**os.environ, **self.environment(warehouse_url), **(extra_env or {})}
        return subprocess.run(
            self.command(args), env=env, cwd=self.project_dir, text=True, capture_output=capture, check=False
        )

    def manifest_is_current(self) -> bool:
        """The manifest exists and is newer than every file of the dbt project."""
        if not self.manifest_path.exists():
            return False
        built = self.manifest_path.stat().st_mtime
        for name in PROJECT_SOURCES:
            path = self.project_dir / name
            files = [path] if path.is_file() else (p for p in path.rglob("*") if p.is_file())
            if any(f.stat().st_mtime > built for f in files):
                return False
        return True

    def prepare_manifest(self, warehouse_url: str, *, force: bool = False) -> Path:
        """`dbt parse` into target/base_<tf>/ unless the manifest there is current. Safe to call from
        several processes at once: one parses, the others wait for it and reuse its result."""
        from filelock import FileLock

        manifest, target = self.manifest_path, self.target_dir
        if not force and self.manifest_is_current():
            return manifest
        target.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target / ".prepare.lock"), timeout=300):
            if not force and self.manifest_is_current():
                return manifest  # another process prepared it while we waited
            started = time.monotonic()
            scratch = Path(tempfile.mkdtemp(prefix=".parse-", dir=target))
            try:
                result = self.run(
                    ["parse", "--quiet"],
                    warehouse_url,
                    extra_env={"DBT_TARGET_PATH": str(scratch), "DBT_LOG_PATH": str(scratch)},
                    capture=True,
                )
                if result.returncode != 0 or not (scratch / "manifest.json").exists():
                    detail = " | ".join((result.stdout + result.stderr).strip().splitlines()[-5:])
                    raise UserError(
                        f"`dbt parse` of {self.project_dir} failed: {detail or 'no output'}; "
                        "fix the dbt project, then run `make dbt-parse`"
                    )
                # partial_parse first, manifest last: a current manifest implies a matching cache
                for name in (PARTIAL_PARSE, "semantic_manifest.json", "manifest.json"):
                    if (scratch / name).exists():
                        os.replace(scratch / name, target / name)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            log.info("prepared %s in %.1f s", manifest, time.monotonic() - started)
        return manifest

    def prune_invocations(self, keep: int = _KEEP_INVOCATIONS) -> None:
        """Drop all but the newest `keep` per-invocation folders Dagster runs leave in the target."""
        if not self.target_dir.exists():
            return
        folders = sorted(
            (
                p
                for p in self.target_dir.iterdir()
                if p.is_dir() and not p.name.startswith(".") and p.name != BY_HAND
            ),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for folder in folders[keep:]:
            shutil.rmtree(folder, ignore_errors=True)

    # --- under Dagster ---------------------------------------------------------------------------

    def dbt_project(self) -> DbtProject:
        """dagster-dbt's DbtProject for this base timeframe (manifest in target/base_<tf>/)."""
        from dagster_dbt import DbtProject

        return DbtProject(
            project_dir=self.project_dir,
            profiles_dir=self.project_dir,
            target_path=self.target_dir.relative_to(self.project_dir),
        )

    def dbt_resource(self) -> DbtCliResource:
        """The `dbt` resource. It starts the launcher, not dbt: the asset hands each invocation
        the warehouse of its `warehouse` resource (see `invoke`)."""
        from crypto_assets.transform.resources import ProjectDbtCli

        launcher = launcher_executable()
        if launcher is None:
            raise UserError(f"`{LAUNCHER}` is not installed: reinstall the package (make install)")
        return ProjectDbtCli(project_dir=self.dbt_project(), dbt_executable=launcher)

    @contextmanager
    def invoke(
        self, dbt: DbtCliResource, args: Sequence[str], *, context: AssetExecutionContext, warehouse_url: str
    ) -> Iterator[DbtCliInvocation]:
        """`dbt <args>` (with the vars) for the assets of `context`, in a new folder of the target,
        on `warehouse_url`: its profile variables go to that one dbt process through the launcher's
        handoff file, which is gone when the block ends even if dbt never started."""
        run_id = context.run.run_id[:8]
        folder = self.target_dir / f"{context.op_execution_context.op.name}-{run_id}-{uuid.uuid4().hex[:7]}"
        folder.mkdir(mode=0o700, parents=True)
        # reuse the parse of the manifest, as dagster-dbt does from its default target folder
        if (self.target_dir / PARTIAL_PARSE).exists():
            shutil.copy(self.target_dir / PARTIAL_PARSE, folder / PARTIAL_PARSE)
        handoff = write_handoff(folder, warehouse_env(warehouse_url))
        try:
            yield dbt.cli(self.with_vars(args), context=context, target_path=folder, raise_on_error=False)
        finally:
            handoff.unlink(missing_ok=True)
