# The worker image: PyTorch's Linux wheels bundle the CUDA runtime; the host provides the driver
# through the NVIDIA container toolkit.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api ./api
COPY shared ./shared
COPY worker ./worker
COPY cli ./cli
RUN pip install --no-cache-dir ".[worker]" && useradd --create-home fovea
USER fovea
CMD ["fovea", "worker", "--concurrency", "1"]
