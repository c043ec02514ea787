FROM python:3.11-slim
WORKDIR /app
COPY . .
# torch==2.13.0 from the index brings the CUDA build: the image is meant for GPU workers.
RUN pip install --no-cache-dir torch==2.13.0 \
 && pip install --no-cache-dir . \
 && pip install --no-cache-dir --no-deps open-clip-torch==3.3.0
