"""Features domain: technical indicators per bar (pure code in indicators.py, warehouse I/O in store.py,
the asset in assets.py). The asset module is imported by definitions.py only."""
