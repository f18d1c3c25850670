"""The champion gate: which registered version a strategy's signals come from.

- A first version becomes champion only if it shows an edge out of sample: Brier skill above 0
  against the base rate, and the trades it takes not worse (mean realized return) than taking
  every entry. Without an edge there is no champion: an honest result, not one to tune away.
- A later version replaces the champion only if it beats it on the same rows: the entries of the
  new walk-forward's latest test fold that are newer than everything the champion was trained on
  (so both models see them out of sample), by `margin` in log loss. Otherwise it becomes the
  challenger, and the reason is recorded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def edge(overall: dict[str, float]) -> tuple[bool, str]:
    """Does the out-of-sample record show an edge? With the figures that decide it."""
    skill = overall["brier_skill"]
    taken, every = overall["mean_return_taken"], overall["mean_return_all"]
    facts = (
        f"Brier skill {skill:+.4f} vs the base rate; mean return of the {int(overall['trades'])} "
        f"trades taken {taken:+.4%} vs {every:+.4%} taking every entry"
    )
    if not skill > 0:
        return False, f"no edge out of sample: {facts}"
    if overall["trades"] == 0 or math.isnan(taken) or taken < every:
        return False, f"no trading edge out of sample: {facts}"
    return True, f"edge out of sample: {facts}"


def decide(
    *,
    new_version: int,
    has_edge: bool,
    edge_reason: str,
    champion_version: int | None,
    comparison_rows: int,
    new_log_loss: float,
    champion_log_loss: float,
    margin: float,
    min_comparison_rows: int,
) -> Decision:
    """Promote version `new_version` to champion, or keep the champion (see the module doc)."""
    if not has_edge:
        return Decision(False, f"v{new_version} not promoted: {edge_reason}")
    if champion_version is None:
        return Decision(True, f"v{new_version} is the first champion: {edge_reason}")
    if comparison_rows < min_comparison_rows:
        return Decision(
            False,
            f"v{new_version} not promoted: only {comparison_rows} labels of the latest fold are newer "
            f"than champion v{champion_version}'s training data (need {min_comparison_rows})",
        )
    verdict = (
        f"log loss {new_log_loss:.4f} vs champion v{champion_version}'s {champion_log_loss:.4f} on "
        f"the same {comparison_rows} out-of-sample labels (margin {margin})"
    )
    if new_log_loss <= champion_log_loss - margin:
        return Decision(True, f"v{new_version} promoted: {verdict}")
    return Decision(False, f"v{new_version} not promoted: {verdict}")
