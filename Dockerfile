# The streamscore worker image used by docker-compose.yml. Configure it only through STREAMSCORE_* variables.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the package needs, so the local .venv, .data and .git never enter the build.
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY features ./features
COPY models ./models
RUN pip install . \
    && useradd --create-home --uid 10001 streamscore \
    && mkdir -p /data \
    && chown streamscore /data

USER streamscore
WORKDIR /home/streamscore
ENV STREAMSCORE_DATA_DIR=/data
VOLUME ["/data"]

ENTRYPOINT ["streamscore"]
CMD ["worker"]
