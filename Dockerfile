# ecr-emulator as a container: the ECR API on 5001, the registry on 5000, data in /data.
#   docker build -t ecr-emulator .
#   docker run -p 127.0.0.1:5000:5000 -p 127.0.0.1:5001:5001 -v ecr-data:/data ecr-emulator
# tests/test_container.py builds the same /opt/ecr-emulator with container/install.sh and runs
# the ENTRYPOINT, CMD, ENV, USER and HEALTHCHECK below from it (no container engine needed).
ARG PYTHON=python:3.11-slim-bookworm

FROM ${PYTHON} AS build
ENV PIP_NO_CACHE_DIR=1
COPY . /src
RUN ["/src/container/install.sh", "/src", "/opt/ecr-emulator"]

FROM ${PYTHON}
COPY --from=build /opt/ecr-emulator /opt/ecr-emulator
RUN ["useradd", "--system", "--uid", "10001", "--user-group", "--home-dir", "/data", "--create-home", "ecr"]
ENV PATH=/opt/ecr-emulator/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    ECR_EMULATOR_HOST=0.0.0.0 \
    ECR_EMULATOR_DATA_DIR=/data
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 5000 5001
HEALTHCHECK --interval=5s --timeout=5s --start-period=10s --retries=3 CMD ["ecr-emulator-healthcheck"]
ENTRYPOINT ["ecr-emulator"]
CMD ["serve"]
