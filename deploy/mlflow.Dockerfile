# MLflow tracking server + model registry; backend store in PostgreSQL, artifacts on a volume.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN pip install "mlflow>=3.17,<4" "psycopg2-binary>=2.9" \
    && useradd --system --create-home --home-dir /home/mlflow mlflow \
    && mkdir -p /mlflow/artifacts \
    && chown mlflow /mlflow/artifacts

USER mlflow
EXPOSE 5000
