# The function as a container, for Cloud Run (`./deploy.sh --run` builds this with Cloud Build)
# or any other container host. It runs exactly what Cloud Functions runs:
# functions-framework serving main.gemini through gunicorn.
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

# exec replaces the shell, so gunicorn runs as PID 1 and receives Cloud Run's SIGTERM itself.
CMD exec functions-framework --target=gemini --port="$PORT"
