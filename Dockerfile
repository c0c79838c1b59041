# The function as a container, for Cloud Run (`./deploy.sh --run` builds this with Cloud Build)
# or any other container host. It runs what Cloud Functions runs, functions-framework's app
# serving main.gemini through gunicorn, with one difference: a cap on the request line (see CMD).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY main.py ./
COPY gemini_compat/ ./gemini_compat/
COPY schemas/ ./schemas/
# Bytecode compiled now, not on every cold start (PYTHONDONTWRITEBYTECODE keeps it from being cached then).
RUN python -m compileall -q main.py gemini_compat

# No root at run time: the function needs no privileges and writes no files.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin app
USER 10001

# PORT: Cloud Run sets its own; 8080 is for `docker run -p 8080:8080`.
# THREADS: gunicorn threads in functions-framework's single worker; keep it equal to the
# platform's per-instance concurrency (deploy.sh sets both from --concurrency). The function is
# stateless: to scale out, run more replicas and let the platform's autoscaler decide how many.
ENV PORT=8080 \
    THREADS=16 \
    WORKERS=1
EXPOSE 8080

# gunicorn with functions-framework's own app factory: exactly the server `functions-framework
# --target=gemini` starts (its GunicornApplication: the same bind, WORKERS, THREADS, timeout and
# log level, from the same environment variables, and the app built before the worker forks, which
# is what --preload does), except that functions-framework sets limit_request_line=0, unlimited:
# a 16 MB request line then costs the worker seconds of CPU before the app can refuse it. 8190 bytes
# (gunicorn's maximum) is far more than any Gemini API URL needs; longer lines get gunicorn's 414.
# functions-framework's command line takes no gunicorn options, and its GunicornApplication does not
# read GUNICORN_CMD_ARGS, hence gunicorn here (tests/test_deploy.py checks both claims).
# exec replaces the shell, so gunicorn runs as PID 1 and receives Cloud Run's SIGTERM itself.
CMD exec gunicorn --bind="${HOST:-0.0.0.0}:$PORT" --workers="$WORKERS" --threads="$THREADS" \
    --timeout="${CLOUD_RUN_TIMEOUT_SECONDS:-0}" --log-level="${GUNICORN_LOG_LEVEL:-error}" \
    --preload --limit-request-line=8190 'functions_framework:create_app(target="gemini")'
