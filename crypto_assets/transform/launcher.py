"""`crypto-assets-dbt`: the dbt executable the transform assets give dagster-dbt.

dbt finds its warehouse in environment variables (dbt_project/profiles.yml), and dagster-dbt 0.29
starts dbt with a copy of the run process's `os.environ` and no way to add to it:
`DbtCliResource.cli` has no `env` parameter (dagster PR 29656 proposed one and was closed in
favour of patching `os.environ` around the call). Patching `os.environ` would hand the warehouse
password to every thread and subprocess of the run process for as long as it is set, so instead
the asset writes the profile variables of one invocation into that invocation's target folder
(`write_handoff`: a file only its owner can read), and this launcher, started by dagster-dbt in
place of dbt, reads and deletes the file, then becomes dbt with them in its environment (exec:
same process, so dagster-dbt's signals and exit status reach dbt itself).

Standard library only: it runs before every dbt invocation.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

LAUNCHER = "crypto-assets-dbt"
HANDOFF = ".profile-environment.json"


def write_handoff(folder: Path, env: Mapping[str, str]) -> Path:
    """Write `env` for the one dbt process that will use `folder` as its target path."""
    path = folder / HANDOFF
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(dict(env), handle)
    return path


def take_handoff(folder: Path) -> dict[str, str]:
    """The variables written for `folder` (none if there is no handoff), deleting them from disk."""
    path = folder / HANDOFF
    try:
        env = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    path.unlink(missing_ok=True)
    return env


def dbt_executable() -> str:
    """The dbt beside this interpreter: the venv's bin/ is often not on PATH (cron, IDEs, services)."""
    beside_python = Path(sys.executable).parent / "dbt"
    return str(beside_python) if beside_python.exists() else shutil.which("dbt") or "dbt"


def launcher_executable() -> str | None:
    """Where this launcher is installed (beside the interpreter, else on PATH), if it is."""
    beside_python = Path(sys.executable).parent / LAUNCHER
    return str(beside_python) if beside_python.exists() else shutil.which(LAUNCHER)


def main() -> None:
    env = dict(os.environ)
    target = env.get("DBT_TARGET_PATH")  # set by dagster-dbt to the invocation's own folder
    if target:
        env.update(take_handoff(Path(target)))
    dbt = dbt_executable()
    os.execvpe(dbt, [dbt, *sys.argv[1:]], env)


if __name__ == "__main__":
    main()
