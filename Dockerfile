# SafeCity's image: one image for every role (`serve`, `worker`, `migrate`, the CLI).
#   docker build -t safecity:latest .
# The Kubernetes manifests in deploy/kubernetes/ name this image as safecity:latest.

# Builder: hnswlib has no wheel for Python 3.11 on Linux and compiles, so the compiler stays here.
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/safecity
ENV PATH=/opt/safecity/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --upgrade "pip>=24" "setuptools>=69,<81" wheel \
 && pip install --no-cache-dir .

FROM python:3.11-slim
# Every binary wheel SafeCity uses (OpenCV headless, PyAV with its own FFmpeg, ONNX Runtime, dlib,
# psycopg) bundles its libraries; the slim image's libstdc++ and zlib are all they need besides.
COPY --from=build /opt/safecity /opt/safecity
RUN groupadd --system --gid 10001 safecity \
 && useradd --system --uid 10001 --gid safecity --home-dir /var/lib/safecity --shell /usr/sbin/nologin safecity \
 && mkdir -p /var/lib/safecity \
 && chown safecity:safecity /var/lib/safecity
ENV PATH=/opt/safecity/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SAFECITY_DATA_DIR=/var/lib/safecity
USER 10001:10001
WORKDIR /var/lib/safecity
EXPOSE 8000
ENTRYPOINT ["safecity"]
CMD ["--help"]
