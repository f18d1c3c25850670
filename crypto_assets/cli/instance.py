"""The Dagster instance the command line records its runs in."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from crypto_assets.settings import home_dir

# the embedded default instance config, kept at the repository root beside workspace.yaml
REPO_INSTANCE_CONFIG = Path(__file__).resolve().parents[2] / "dagster.yaml"


def ensure_dagster_home() -> Path:
    """Use $DAGSTER_HOME, or `$CRYPTO_ASSETS_HOME/dagster`, creating it with our dagster.yaml."""
    home = Path(os.environ.get("DAGSTER_HOME") or home_dir() / "dagster").absolute()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() and REPO_INSTANCE_CONFIG.exists():
        shutil.copyfile(REPO_INSTANCE_CONFIG, config)
    os.environ["DAGSTER_HOME"] = str(home)
    return home
