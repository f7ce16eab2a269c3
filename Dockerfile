# syntax=docker/dockerfile:1
# Three stages:
#   trainer  TensorFlow and the training code; trains the default model into /models
#   wheel    builds the wheel of the serving package (app/ only)
#   runtime  slim Python with the locked serving dependencies, that wheel and the trained
#            model: no TensorFlow, no compilers (the default target)
# docker build -t multilabel-service .          # the service
# docker build --target trainer -t multilabel-trainer .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS trainer
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /src
# Dependencies first, in layers of their own, so that code changes do not reinstall
# TensorFlow: the serving set as locked, then the training extras from the project's
# metadata alone (an empty README stands in for the real one, which changes often).
COPY requirements/serve.txt requirements/serve.txt
RUN pip install -r requirements/serve.txt
COPY pyproject.toml ./
RUN touch README.md && pip install ".[train]"
COPY app/ app/
COPY training/ training/
# The default model: the reference network and its full evaluation, exactly as
# `python -m training.train` makes it outside the container.
RUN python -m training.train --output /models

FROM ${PYTHON_IMAGE} AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app/ app/
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    MULTILABEL_HOST=0.0.0.0 \
    MULTILABEL_PORT=8000 \
    MULTILABEL_MODEL_DIR=/models \
    MULTILABEL_LOG_FORMAT=json
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app
COPY requirements/serve.txt /tmp/serve.txt
RUN python -m venv /opt/venv \
    && pip install -r /tmp/serve.txt \
    && rm /tmp/serve.txt
COPY --from=wheel /wheels/ /tmp/wheels/
RUN pip install --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels
# The model baked in at build time; mount a model repository over /models to serve others
# (new versions published there are picked up while running: MULTILABEL_POLL_INTERVAL).
COPY --from=trainer /models/ /models/
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('MULTILABEL_PORT', '8000') + '/health', timeout=2)"]
CMD ["multilabel-serve"]
