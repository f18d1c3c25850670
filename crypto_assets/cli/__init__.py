"""The `crypto-assets` command line: demo, backfill, status and dev."""
