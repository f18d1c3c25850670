# MLflow tracking server + model registry; backend store in PostgreSQL, artifacts on a volume (or in
# object storage: boto3 is installed). Build from the repository root (context: .).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# the MLflow of requirements.lock (the one the end-to-end test ran), see mlflow-requirements.txt
COPY requirements.lock deploy/mlflow-requirements.txt /tmp/install/
RUN pip install -c /tmp/install/requirements.lock -r /tmp/install/mlflow-requirements.txt \
    && rm -rf /tmp/install \
    && useradd --system --create-home --home-dir /home/mlflow mlflow \
    && mkdir -p /mlflow/artifacts \
    && chown mlflow /mlflow/artifacts

USER mlflow
EXPOSE 5000
