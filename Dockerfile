# Paddock in a container: `docker compose up -d --build` (README, "Docker").
# No secret is baked in: the token and keys come from .env at run time (env_file).
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PADDOCK_HTTP_PORT=8080 \
    PADDOCK_HTTP_HOST=0.0.0.0

WORKDIR /app

# The dependencies first, so that a code change does not reinstall them.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt \
    && groupadd --gid 10001 paddock \
    && useradd --no-log-init --create-home --uid 10001 --gid 10001 paddock \
    && mkdir data \
    && chown 10001:10001 data

# The code stays root's: the bot can read it but only write under data/.
COPY . .

# Not root. A bind-mounted data/ must be writable by uid 10001 (README, Docker).
USER 10001:10001
# The SQLite database (DATABASE_PATH defaults to data/paddock.db).
VOLUME ["/app/data"]
# The side door: /healthz, /metrics, /callbacks/hiapi.
EXPOSE 8080

# Slim has no curl: ask /healthz with Python (a 503 or no answer raises, exit 1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['PADDOCK_HTTP_PORT'] + '/healthz', timeout=4)"]

CMD ["python", "bot.py"]
