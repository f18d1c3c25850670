"""Out-of-sample scores of a strategy model: probability quality and what trading on it would give.

The naive forecast every score is compared with is the training rows' base rate (what a model
without features would predict at that time). A trade is taken when the model's probability
exceeds the threshold; its outcome is the label's realized return (barrier or time-limit exit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

_EPS = 1e-6


def scores(
    y: np.ndarray, p: np.ndarray, returns: np.ndarray, *, taken: np.ndarray, naive: np.ndarray
) -> dict[str, float]:
    """Scores of predictions `p` for labels `y` (0/1) with realized `returns`, all out of sample.

    `taken` marks the entries the model would trade; `naive` is the naive forecast of each row (its
    fold's training base rate).
    """
    import numpy as np
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    y = np.asarray(y, dtype=np.int64)
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    returns = np.asarray(returns, dtype=np.float64)
    naive = np.clip(np.asarray(naive, dtype=np.float64), _EPS, 1 - _EPS)
    taken = np.asarray(taken, dtype=bool)
    both_classes = len(np.unique(y)) == 2
    brier = float(brier_score_loss(y, p)) if len(y) else float("nan")
    brier_naive = float(np.mean((y - naive) ** 2)) if len(y) else float("nan")
    return {
        "rows": float(len(y)),
        "base_rate": float(y.mean()) if len(y) else float("nan"),
        "roc_auc": float(roc_auc_score(y, p)) if both_classes else float("nan"),
        "log_loss": float(log_loss(y, p, labels=[0, 1])) if len(y) else float("nan"),
        "log_loss_naive": float(log_loss(y, naive, labels=[0, 1])) if len(y) else float("nan"),
        "brier": brier,
        "brier_skill": 1.0 - brier / brier_naive if brier_naive > 0 else float("nan"),
        "trades": float(taken.sum()),
        "precision": float(y[taken].mean()) if taken.any() else float("nan"),
        "win_rate_taken": float(y[taken].mean()) if taken.any() else float("nan"),
        "win_rate_all": float(y.mean()) if len(y) else float("nan"),
        "mean_return_taken": float(returns[taken].mean()) if taken.any() else float("nan"),
        "mean_return_all": float(returns.mean()) if len(y) else float("nan"),
    }
