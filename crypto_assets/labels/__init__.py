"""Labels domain: triple-barrier labels of the DCA, swing and channel strategies (pure code in barrier.py
and strategies.py, warehouse I/O in store.py, the assets in assets.py)."""
