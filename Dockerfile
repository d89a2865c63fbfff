# One image for every ezla process in compose.yaml: the nodes, the registry and the one-shot migration.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    EZLA_PKI_DIR=/app/pki \
    EZLA_VAR_DIR=/app/var

WORKDIR /app
COPY pyproject.toml README.md ./
COPY ezla ./ezla
RUN pip install .

# The committed CA profiles; keys and issued material are made by `ezla pki init` (the migrate
# service) into the shared `pki` volume, which Docker seeds from this directory on first use.
COPY pki/profiles ./pki/profiles
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin ezla \
    && mkdir -p /app/var \
    && chown -R ezla:ezla /app/pki /app/var
USER ezla

EXPOSE 8000
# SIGTERM drains: readiness 503, in-flight requests finish, delivery leases are released.
STOPSIGNAL SIGTERM
CMD ["ezla", "serve", "--host", "0.0.0.0", "--port", "8000"]
