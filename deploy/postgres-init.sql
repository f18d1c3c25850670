-- Run once by the postgres image on an empty data volume (/docker-entrypoint-initdb.d).
-- One server, one database per concern; all owned by $POSTGRES_USER.
CREATE DATABASE crypto_assets;  -- the warehouse (CRYPTO_ASSETS_WAREHOUSE_URL)
CREATE DATABASE dagster;        -- the Dagster instance: runs, event logs, schedules
CREATE DATABASE mlflow;         -- MLflow tracking and model registry
