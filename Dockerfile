# syntax=docker/dockerfile:1
# One recipe for the image of every program of the platform (seed §6: Jenkins builds, ECR keeps):
#
#   docker build --build-arg SERVICE=services.gateway -t <registry>/come2us-dev/gateway:1.4.0 .
#
# SERVICE is the module `python -m` runs (`come2us images --env ENV` lists each service's module
# and repository). The project is installed with the pinned constraints, as a non-root user; the
# ECS task runs it with a read-only root filesystem and a writable /tmp (stack/aws/compute.py),
# and its health check calls the service with Python itself (no curl in the image).

ARG PYTHON=3.11

FROM python:${PYTHON}-slim AS wheels
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY stack ./stack
COPY services ./services
COPY steps ./steps
RUN pip wheel --no-cache-dir --constraint constraints.txt --wheel-dir /wheels .

FROM python:${PYTHON}-slim
ARG SERVICE
RUN test -n "${SERVICE}" || (echo "build with --build-arg SERVICE=services.<name>" >&2; exit 1)
ENV COME2US_SERVICE_MODULE=${SERVICE} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY --from=wheels /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin come2us
USER 10001
LABEL org.opencontainers.image.title="come2us ${SERVICE}"
ENTRYPOINT ["/bin/sh", "-c", "exec python -m \"$COME2US_SERVICE_MODULE\""]
