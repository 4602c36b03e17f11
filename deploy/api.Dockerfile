# The API image: the service stack only, no torch (a few hundred MB instead of several GB). Flower runs
# from it too (the flower extra: it needs only Celery and the broker).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api ./api
COPY shared ./shared
COPY worker ./worker
COPY cli ./cli
RUN pip install --no-cache-dir ".[flower]" && useradd --create-home fovea
USER fovea
EXPOSE 8000
CMD ["fovea", "api", "--host", "0.0.0.0", "--port", "8000"]
