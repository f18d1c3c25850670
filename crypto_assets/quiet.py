"""Dagster features we use knowingly while they are beta or preview, without their warnings.

Every process that loads the code location (webserver, daemon, each run worker, the CLI) would
print them otherwise.
"""

import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from dagster import BetaWarning, PreviewWarning

T = TypeVar("T")


def quietly(factory: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`factory(*args, **kwargs)` without Dagster's beta and preview warnings, e.g.
    `@quietly(asset, backfill_policy=...)` or `quietly(AssetCheckSpec, ..., partitions_def=...)`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        warnings.simplefilter("ignore", PreviewWarning)
        return factory(*args, **kwargs)
