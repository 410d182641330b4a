# The production image: the API, the worker, the operator CLI (`payrecon`) and the database
# migrations, with dependencies from the hash-locked requirements.lock. No sandbox, dev
# tooling, benchmarks or tests. `docker compose --profile sandbox` builds the second stage.
# Pinned to an exact release and Debian suite; moved forward on purpose, not by a rebuild.
FROM python:3.11.15-slim-trixie AS service

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock

COPY pyproject.toml README.md alembic.ini ./
COPY config.py log.py worker.py temporal_config.py temporal_codec.py lifecycle.py ./
COPY workflows ./workflows
COPY activities ./activities
COPY api ./api
COPY inbox ./inbox
COPY paystack ./paystack
COPY db ./db
COPY domain ./domain
COPY cli ./cli
COPY outbound ./outbound
# payrecon itself; every dependency is installed above.
RUN pip install --no-deps . \
    && useradd --system --no-create-home --uid 10001 payrecon

USER payrecon
EXPOSE 8000 9464
CMD ["python", "-m", "api"]

# The local Paystack, for trying payrecon without a Paystack account.
FROM service AS sandbox
COPY sandbox ./sandbox
EXPOSE 8100
CMD ["python", "-m", "sandbox"]
