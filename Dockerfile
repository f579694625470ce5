# The ECAP image: the CLI, workers and batch jobs (Java 17 serves Spark).
FROM python:3.11-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ecap ecap
COPY agents agents
COPY tables tables
COPY spark_jobs spark_jobs
COPY web web
RUN pip install --no-cache-dir .
RUN useradd --create-home ecap && mkdir -p /data && chown ecap /data
USER ecap
ENTRYPOINT ["ecap"]
CMD ["--help"]
