# Two images from one file: `docker build --target edge .` (no torch: the edge runs no model) and
# `docker build --target worker .` (torch with CUDA, for GPU hosts). compose.yaml builds both.
FROM python:3.11-slim AS base
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 fleet
WORKDIR /app
COPY . .
# The processes write under var/ (read models, caches, the tiny default model): the user owns it.
RUN mkdir -p var && chown fleet var

FROM base AS edge
RUN pip install .
USER fleet
EXPOSE 8888
CMD ["fooocus-fleet", "edge", "--host", "0.0.0.0", "--port", "8888"]

FROM base AS worker
# torch==2.13.0 from PyPI is the CUDA build on Linux x86_64; open-clip-torch only for its CLIP vocabulary.
RUN pip install torch==2.13.0 \
 && pip install '.[worker]' \
 && pip install --no-deps open-clip-torch==3.3.0
USER fleet
CMD ["fooocus-fleet", "worker"]
