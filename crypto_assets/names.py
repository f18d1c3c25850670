"""Names several domains share: concurrency pools and asset groups.

Kept here so a module that needs a name does not import another domain's asset module for it.
"""

#: every step that writes the warehouse (DuckDB allows one writing process per file)
WAREHOUSE_POOL = "warehouse_writes"

INGESTION_GROUP = "ingestion"
TRANSFORM_GROUP = "transform"
FEATURES_GROUP = "features"
LABELS_GROUP = "labels"
MODELS_GROUP = "models"
