# One image for the API, the workers and one-shot commands (migrations, admin).
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN useradd --create-home --uid 10001 pilotdial
COPY pyproject.toml README.md ./
COPY core ./core
COPY api ./api
COPY campaigns ./campaigns
COPY data_cleaning ./data_cleaning
COPY dialer ./dialer
COPY feasibility ./feasibility
COPY surveys ./surveys
COPY migrations ./migrations
RUN pip install --upgrade pip && pip install .
USER pilotdial
ENV PILOTDIAL_DATA_DIR=/home/pilotdial/var
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["pilotdial", "serve", "--host", "0.0.0.0", "--port", "8000"]
