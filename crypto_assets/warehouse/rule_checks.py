"""Data-quality rules in SQL: each rule is a predicate that no stored row may match.

Plain SQL over the warehouse; the Dagster checks built from it live in crypto_assets.rule_checks.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from crypto_assets.warehouse.engine import Warehouse


def count_violations(warehouse: "Warehouse", table: str, rules: Mapping[str, str]) -> "pd.DataFrame":
    """Rows of `table` breaking each rule (rule name -> SQL predicate a good row never meets)."""
    import pandas as pd

    counts = ", ".join(
        f"count(*) FILTER (WHERE {predicate}) AS r{i}" for i, predicate in enumerate(rules.values())
    )
    row = warehouse.query(f"SELECT count(*) AS total_rows, {counts} FROM {table}").iloc[0]
    return pd.DataFrame(
        {"rule": list(rules), "violations": [int(row[f"r{i}"]) for i in range(len(rules))]}
    ).assign(total_rows=int(row["total_rows"]))
