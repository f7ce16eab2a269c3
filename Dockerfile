# Stages, all from one base image (a mirror's copy or a hardened one: --build-arg PYTHON_IMAGE=...):
#   model        the committed default model (models/<name>/<version>/ in the build context);
#                no stage trains, and the build stops here, saying why, if there is no version
#   serving-env  /opt/venv: the serving set as locked (requirements/serve.txt) and the app
#                package, less what serving never imports
#   trainer      the training set as locked (requirements/train.txt), the project, and the
#                default model in /models: compose's one-shot `trainer` service
#   runtime      (the default target) that venv and the default model: no TensorFlow, no training
#                code, no compilers, no pip in the venv; runs as uid 10001
#   docker build -t multilabel-service:0.1.0 .
#   docker build --target trainer -t multilabel-trainer:0.1.0 .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS model
COPY models/ /models/
RUN ls -d /models/*/[0-9]*/ >/dev/null 2>&1 \
    || { echo "error: models/ in the build context holds no model version" \
              "(models/<name>/<version>/); the image serves the committed default model." \
              "To build with your own: python -m training.train, then build again." >&2; exit 1; }

FROM ${PYTHON_IMAGE} AS serving-env
# uv installs the lock, with every hash checked; uv itself is locked (requirements/uv.txt) and
# kept out of the images. It trusts the image's certificate store, and never fetches a Python.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    UV_SYSTEM_CERTS=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1
COPY requirements/uv.txt requirements/serve.txt /tmp/lock/
RUN pip install --quiet --target /tmp/uv --require-hashes --no-deps --requirement /tmp/lock/uv.txt \
    && python -m venv --without-pip /opt/venv \
    && /tmp/uv/bin/uv pip install --python /opt/venv/bin/python --require-hashes --no-deps \
       --requirement /tmp/lock/serve.txt
# The serving package alone: built from pyproject.toml and app/, the wheel has no training code.
COPY pyproject.toml README.md /src/
COPY app/ /src/app/
RUN /tmp/uv/bin/uv pip install --python /opt/venv/bin/python --no-deps /src
# What serving never imports (28 MB + 34 MB of 209 MB): test suites, C headers, F2PY, ONNX
# Runtime's Python tools (quantization, transformer optimizers, converters) and its C API
# library (the Python binding carries its own copy of the runtime), with the two commands that
# ran those tools. scripts/container-test.sh proves the image still serves, and that every
# command left in /opt/venv/bin loads.
RUN cd /opt/venv/lib/python3*/site-packages \
    && rm -rf numpy/_core/include numpy/f2py numpy/_pyinstaller \
              onnxruntime/quantization onnxruntime/transformers onnxruntime/tools \
              onnxruntime/datasets onnxruntime/backend onnxruntime/capi/libonnxruntime.so.* \
              /opt/venv/bin/f2py /opt/venv/bin/onnxruntime_test /opt/venv/bin/Activate.ps1 \
    && find . -depth -type d -name tests -exec rm -rf {} +

FROM ${PYTHON_IMAGE} AS trainer
# UV_COMPILE_BYTECODE: compiled at install, once; with PYTHONDONTWRITEBYTECODE nothing else
# would, and every start would compile TensorFlow's modules again (measured: docs/deployment.md).
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    UV_SYSTEM_CERTS=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ORT_DISABLE_TELEMETRY=1
WORKDIR /src
# The locked training set first, in a layer of its own: code changes do not reinstall TensorFlow.
COPY requirements/uv.txt requirements/train.txt /tmp/lock/
RUN pip install --quiet --target /tmp/uv --require-hashes --no-deps --requirement /tmp/lock/uv.txt \
    && python -m venv --without-pip /opt/venv \
    && /tmp/uv/bin/uv pip install --python /opt/venv/bin/python --require-hashes --no-deps \
       --requirement /tmp/lock/train.txt \
    && rm -rf /tmp/uv /tmp/lock
COPY pyproject.toml README.md ./
COPY app/ app/
COPY training/ training/
RUN pip --python /opt/venv/bin/python install --quiet --no-deps .
# Seeds compose's models volume; `python -m training.train --output /models` adds versions.
COPY --from=model /models/ /models/

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    ORT_DISABLE_TELEMETRY=1 \
    MULTILABEL_HOST=0.0.0.0 \
    MULTILABEL_PORT=8000 \
    MULTILABEL_GRPC_PORT=8001 \
    MULTILABEL_MODEL_DIR=/models \
    MULTILABEL_LOG_FORMAT=json
# HOME=/tmp: libraries look for a home; /tmp exists, and it is the one writable mount a
# read-only root filesystem gets (the service writes nothing there but worker metrics).
# ORT_DISABLE_TELEMETRY: ONNX Runtime's telemetry off; it would persist a device id under
# HOME, and print a plain-text warning into the JSON log where it cannot.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /tmp --no-create-home \
               --shell /usr/sbin/nologin app
COPY --from=serving-env /opt/venv/ /opt/venv/
# The default model; mount a model repository over /models to serve others (versions published
# there are picked up while running: MULTILABEL_POLL_INTERVAL).
COPY --from=model /models/ /models/
USER 10001:10001
# HTTP (native, Open Inference Protocol REST, TF Serving) and the Open Inference Protocol's gRPC.
EXPOSE 8000 8001
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('MULTILABEL_PORT', '8000') + '/health', timeout=2)"]
CMD ["multilabel-serve"]
