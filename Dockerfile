# The orchestrator's processes (worker, projector, API) for compose/.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY cli cli
COPY config config
COPY schemas schemas
COPY streams streams
COPY projections projections
COPY api api
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT ["migrator"]
