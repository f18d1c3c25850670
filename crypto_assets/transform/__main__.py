"""Run dbt by hand against the configured warehouse: `python -m crypto_assets.transform <dbt args>`.

    python -m crypto_assets.transform build                  # every model and test
    python -m crypto_assets.transform build --full-refresh   # rebuild incremental models
    python -m crypto_assets.transform prepare                # (re)write the manifest Dagster reads
    eval "$(python -m crypto_assets.transform env)"          # export the profile's variables

The warehouse comes from CRYPTO_ASSETS_WAREHOUSE_URL (default: the DuckDB file under
CRYPTO_ASSETS_HOME) and the base timeframe from CRYPTO_ASSETS_TIMEFRAME, as everywhere else.
"""

from __future__ import annotations

import shlex
import sys

from crypto_assets.errors import UserError
from crypto_assets.settings import load_settings
from crypto_assets.transform.project import DbtSetup


def main(argv: list[str]) -> int:
    settings = load_settings()
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    setup = DbtSetup(settings.timeframe)
    if argv[0] == "prepare":
        path = setup.prepare_manifest(settings.warehouse_url, force="--force" in argv)
        print(f"dbt manifest for base timeframe {settings.timeframe.name}: {path}")
        return 0
    if argv[0] == "env":
        for name, value in setup.environment(settings.warehouse_url).items():
            print(f"export {name}={shlex.quote(value)}")
        return 0
    return setup.run(argv, settings.warehouse_url).returncode


if __name__ == "__main__":
    try:
        raise SystemExit(main(sys.argv[1:]))
    except UserError as error:
        print(f"crypto-assets: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
