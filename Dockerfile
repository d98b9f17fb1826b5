# The orchestrator's processes (worker, projector, API) for compose/.
FROM python:3.11-slim
WORKDIR /app
# psql relays the phase worker's COPY streams (streams/dataplane/relay.py)
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY domain domain
COPY ops ops
COPY cli cli
COPY config config
COPY schemas schemas
COPY streams streams
COPY projections projections
COPY api api
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT ["migrator"]
