# One image for the API, the worker, the operator CLI and the sandbox; the command picks.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY config.py log.py worker.py temporal_config.py lifecycle.py ./
COPY workflows ./workflows
COPY activities ./activities
COPY api ./api
COPY inbox ./inbox
COPY cli ./cli
COPY paystack ./paystack
COPY sandbox ./sandbox
COPY db ./db
COPY domain ./domain
COPY devstack ./devstack

# The same package the README installs, without the development extras.
RUN pip install .

USER 10001
EXPOSE 8000 9464
CMD ["python", "-m", "api"]
