"""Entry point of the `crypto-assets` console script.

User mistakes end as one line on stderr and exit code 2; a stale or failed result exits 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from crypto_assets.errors import UserError

EXIT_USAGE = 2


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD") from None


def _minutes(text: str) -> int:
    """A positive whole number of minutes (0 would be no age at all; a negative one, a future)."""
    try:
        minutes = int(text)
    except ValueError:
        minutes = 0
    if minutes <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number of minutes")
    return minutes


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other user mistake
        print(f"crypto-assets: error: {message} (see crypto-assets --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="crypto-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = commands.add_parser("demo", help="build the graph on the embedded default and print a summary")
    demo.add_argument("--days", type=int, default=90, help="days of history to load (default 90)")

    backfill = commands.add_parser("backfill", help="load history through Dagster runs")
    backfill.add_argument("--start", type=_date, required=True, help="first day, YYYY-MM-DD (UTC)")
    backfill.add_argument("--end", type=_date, required=True, help="last day, inclusive")
    backfill.add_argument("--symbols", help="comma-separated subset of the configured symbols")
    backfill.add_argument(
        "--timeframe", help="base timeframe for this load (default CRYPTO_ASSETS_TIMEFRAME)"
    )
    backfill.add_argument("--downstream", action="store_true", help="also rebuild downstream assets")
    backfill.add_argument("--days-per-run", type=int, default=31, help="days per Dagster run (default 31)")

    status = commands.add_parser(
        "status",
        help="the one health check: assets, checks, failed runs, models, symbols; exit 1 if unhealthy",
    )
    status.add_argument(
        "--max-age", type=_minutes, help="minutes a symbol's newest bar may be old (default 4 bars + 5 min)"
    )
    status.add_argument("--json", action="store_true", help="print one JSON document instead of tables")

    gaps = commands.add_parser(
        "gaps", help="list the holes the source could not fill; --clear [SYMBOL] to have them tried again"
    )
    gaps.add_argument(
        "--clear",
        nargs="?",
        const="all",
        metavar="SYMBOL",
        help="forget the recorded unfillable holes (all, or one symbol's) so gap repair asks for them again",
    )

    dev = commands.add_parser(
        "dev",
        help="start `dagster dev` (UI and daemon) on this code location",
        description="Options after `dev` go to `dagster dev` unchanged, e.g. --port 3001 --host 0.0.0.0.",
    )
    dev.set_defaults(forwards_unknown=True)  # main() hands what the parser does not know to dagster dev

    mlflow = commands.add_parser("mlflow", help="start the MLflow UI on the configured tracking store")
    mlflow.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    mlflow.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "forwards_unknown", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    warnings.filterwarnings("ignore", module="dagster")  # beta/preview notices are not for users
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    try:
        if args.command == "demo":
            from crypto_assets.cli.commands import run_demo

            return run_demo(days=args.days)
        if args.command == "backfill":
            from crypto_assets.cli.commands import run_backfill

            return run_backfill(
                start=args.start,
                end=args.end,
                symbols=args.symbols,
                timeframe=args.timeframe,
                downstream=args.downstream,
                days_per_run=args.days_per_run,
            )
        if args.command == "status":
            from crypto_assets.cli.status import run_status

            max_age = timedelta(minutes=args.max_age) if args.max_age is not None else None
            return run_status(max_age=max_age, now=datetime.now(UTC), as_json=args.json)
        if args.command == "gaps":
            from crypto_assets.cli.gaps import run_gaps

            return run_gaps(clear=args.clear)
        if args.command == "mlflow":
            from crypto_assets.cli.commands import run_mlflow

            return run_mlflow(host=args.host, port=args.port)
        if args.command == "dev":
            from crypto_assets.cli.commands import run_dev

            return run_dev(extra)
    except UserError as error:
        print(f"crypto-assets: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("crypto-assets: interrupted", file=sys.stderr)
        return 130
    return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
