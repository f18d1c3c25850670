"""`crypto-assets status`: the one health check.

What Dagster recorded (crypto_assets.cli.health: assets against their freshness policies, the
latest result of every check, failed runs, champion models) and the coverage and age of every
symbol in the warehouse. Exit 0 when healthy, 1 when anything is stale, missing or failing.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import pandas as pd

from crypto_assets.cli.health import Health, age_text, read_health
from crypto_assets.market import Timeframe
from crypto_assets.warehouse import Warehouse, WarehouseBusy

SYMBOL_COLUMNS = ["symbol", "timeframe", "bars", "first_bar", "newest_bar", "coverage", "gaps",
                  "quarantined", "age", "state"]  # fmt: skip


@dataclass
class StatusReport:
    table: pd.DataFrame

    @classmethod
    def empty(cls) -> StatusReport:
        return cls(table=pd.DataFrame(columns=SYMBOL_COLUMNS))

    @property
    def healthy(self) -> bool:
        return bool((self.table["state"] == "ok").all())


def symbol_status(
    warehouse: Warehouse,
    *,
    exchange: str,
    symbols: Sequence[str],
    timeframe: Timeframe,
    now: datetime,
    max_age: timedelta,
) -> StatusReport:
    """Per symbol: first and newest bar, coverage between them, age of the newest closed bar.
    Read-only: a warehouse raw_ohlc was never loaded into reports every symbol missing."""
    scope = {"exchange": exchange, "timeframe": timeframe.name}
    stored = pd.DataFrame(columns=["symbol", "bars", "first_bar", "newest_bar"]).set_index("symbol")
    quarantined = pd.Series(dtype="int64")
    if warehouse.has_table("raw_ohlc"):
        stored = warehouse.query(
            """
            SELECT symbol, count(*) AS bars, min(ts) AS first_bar, max(ts) AS newest_bar
            FROM raw_ohlc WHERE exchange = :exchange AND timeframe = :timeframe
            GROUP BY symbol
            """,
            scope,
        ).set_index("symbol")
    if warehouse.has_table("ohlc_quarantine"):
        quarantined = warehouse.query(
            "SELECT symbol, count(*) AS n FROM ohlc_quarantine "
            "WHERE exchange = :exchange AND timeframe = :timeframe GROUP BY symbol",
            scope,
        ).set_index("symbol")["n"]
    rows = []
    for symbol in symbols:
        if symbol not in stored.index:
            rows.append({"symbol": symbol, "timeframe": timeframe.name, "bars": 0, "state": "missing"})
            continue
        first = pd.Timestamp(stored.loc[symbol, "first_bar"])
        newest = pd.Timestamp(stored.loc[symbol, "newest_bar"])
        bars = int(stored.loc[symbol, "bars"])
        expected = int((newest - first).total_seconds() // timeframe.seconds) + 1
        age = pd.Timestamp(now) - (newest + timeframe.delta)  # since the newest bar closed
        rows.append(
            {
                "symbol": symbol,
                "timeframe": timeframe.name,
                "bars": bars,
                "first_bar": f"{first:%Y-%m-%d %H:%M}",
                "newest_bar": f"{newest:%Y-%m-%d %H:%M}",
                "coverage": f"{bars / expected:.1%}",
                "gaps": expected - bars,
                "quarantined": int(quarantined.get(symbol, 0)),
                "age": age_text(age.total_seconds()),
                "state": "stale" if age > pd.Timedelta(max_age) else "ok",
            }
        )
    return StatusReport(table=pd.DataFrame(rows, columns=SYMBOL_COLUMNS).fillna(""))


def run_status(*, max_age: timedelta | None, now: datetime, as_json: bool) -> int:
    from dagster import DagsterInstance

    from crypto_assets.automation.freshness import raw_ohlc_stale_after
    from crypto_assets.cli.instance import ensure_dagster_home
    from crypto_assets.code_location import build_defs
    from crypto_assets.ingestion.sources import make_source
    from crypto_assets.models.assets import models_by_labels
    from crypto_assets.settings import load_settings

    settings = load_settings()
    exchange = make_source(settings.source).exchange
    ensure_dagster_home()
    with DagsterInstance.get() as instance:
        graph = build_defs(settings).resolve_asset_graph()
        health = read_health(instance, graph, models_by_labels().values(), now)
    busy = ""
    with Warehouse(settings.warehouse_url) as warehouse:
        where = warehouse.describe()
        try:
            symbols = symbol_status(
                warehouse,
                exchange=exchange,
                symbols=settings.symbols,
                timeframe=settings.timeframe,
                now=now,
                max_age=raw_ohlc_stale_after(settings.timeframe) if max_age is None else max_age,
            )
            unfillable = _unfillable_gaps(warehouse)
        except WarehouseBusy as error:  # a run is writing the DuckDB file: Dagster's view still holds
            busy, symbols, unfillable = f"symbols not checked: {error}", StatusReport.empty(), []
    bad_symbols = symbols.table[symbols.table["state"] != "ok"]
    problems = health.problems() + [f"symbol {r.symbol} {r.state}" for r in bad_symbols.itertuples()]
    warnings = health.warnings() + _unfillable_warnings(unfillable) + ([busy] if busy else [])
    if as_json:
        document = {
            "healthy": not problems,
            "now": now.isoformat(timespec="seconds"),
            "problems": problems,
            "warnings": warnings,
            **asdict(health),
            "symbols": symbols.table.to_dict(orient="records"),
            "unfillable_gaps": unfillable,
        }
        print(json.dumps(document, indent=2, default=str))
    else:
        _print_report(health, symbols, where=where, now=now, busy=busy)
        _print_unfillable(unfillable)
    if problems:
        print("unhealthy: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


def _print_report(health: Health, symbols: StatusReport, *, where: str, now: datetime, busy: str) -> None:
    print(f"crypto_assets status at {now:%Y-%m-%d %H:%M} UTC (warehouse {where})")
    assets = pd.DataFrame(health.assets).reindex(
        columns=["asset", "group", "last_materialized", "age", "allowed", "state"]
    )
    print("\nassets (age of the newest materialization against its freshness policy)")
    print(assets.fillna("").to_string(index=False))
    checks = pd.DataFrame(health.checks)
    counts = checks["status"].value_counts().to_dict() if len(checks) else {}
    print("\nchecks: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    failing = checks[checks["status"] == "failed"] if len(checks) else checks
    if len(failing):
        table = failing.reindex(columns=["check", "severity", "description"]).fillna("")
        table["description"] = table["description"].map(_one_line)
        print(table.to_string(index=False, justify="left"))
    not_run = checks[checks["status"] == "not run"]["check"].tolist() if len(checks) else []
    if not_run:
        print(textwrap.fill("not run yet: " + ", ".join(not_run), width=110, subsequent_indent="  "))
    print("\nfailed runs (the last per job; a problem until its assets are materialized again)")
    if health.runs:
        runs = pd.DataFrame(health.runs).assign(
            run_id=lambda t: t["run_id"].str[:8], error=lambda t: t["error"].str.slice(0, 90)
        )
        print(runs.reindex(columns=["job", "run_id", "failed_at", "problem", "error"]).to_string(index=False))
    else:
        print("none")
    print("\nmodels (champion version, its age and out-of-sample AUC)")
    models = pd.DataFrame(health.models).reindex(
        columns=["model", "champion_version", "age", "oos_auc", "last_training"]
    )
    print(models.fillna("").to_string(index=False))
    print("\nsymbols")
    print(busy or symbols.table.to_string(index=False))


def _unfillable_gaps(warehouse) -> list[dict]:
    """The holes gap repair recorded as unfillable: known, accepted facts of the source, shown
    as warnings (not problems) so status does not stay unhealthy over a market's own gaps."""
    from crypto_assets.warehouse.gaps import read_unfillable

    if not warehouse.has_table("ohlc_unfillable_gaps"):
        return []
    with warehouse.read() as connection:
        frame = read_unfillable(connection)
    return [
        {
            "symbol": row["symbol"],
            "exchange": row["exchange"],
            "timeframe": row["timeframe"],
            "first_missing": pd.Timestamp(row["first_missing"]).isoformat(),
            "last_missing": pd.Timestamp(row["last_missing"]).isoformat(),
            "missing_bars": int(row["missing_bars"]),
            "tried_at": pd.Timestamp(row["tried_at"]).isoformat(),
            "run_id": row["run_id"],
        }
        for row in frame.to_dict(orient="records")
    ]


def _unfillable_warnings(unfillable: list[dict]) -> list[str]:
    return [
        f"{gap['symbol']} {gap['missing_bars']} bar(s) from {gap['first_missing']} unfillable "
        f"(tried {gap['tried_at']})"
        for gap in unfillable
    ]


def _print_unfillable(unfillable: list[dict]) -> None:
    print("\nunfillable gaps (the source had no bars; crypto-assets gaps --clear [SYMBOL] to try again)")
    if not unfillable:
        print("none")
        return
    table = pd.DataFrame(unfillable).reindex(
        columns=["symbol", "first_missing", "last_missing", "missing_bars", "tried_at"]
    )
    for column in ("first_missing", "last_missing", "tried_at"):
        table[column] = pd.to_datetime(table[column], utc=True).dt.strftime("%Y-%m-%d %H:%M")
    print(table.to_string(index=False))


def _one_line(text: str, width: int = 100) -> str:
    """A description on one table line: its first line, cut at `width`."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"
