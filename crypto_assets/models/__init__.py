"""Models domain: one scikit-learn classifier per strategy, validated walk-forward and tracked in MLflow.

Pure computation in dataset.py (what a model sees), validation.py (purged walk-forward folds),
evaluation.py (out-of-sample metrics) and training.py; MLflow in tracking.py; the champion gate in
gate.py; the Dagster assets in assets.py and signals.py. Only the asset modules are imported when the
code location loads: scikit-learn and MLflow are imported inside the functions that use them.
"""
