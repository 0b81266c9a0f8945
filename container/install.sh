#!/bin/sh
# Build the image's application directory: a virtualenv at PREFIX with ecr-emulator (and the
# PostgreSQL driver) installed from the source tree SRC, byte code compiled, the health check
# beside the entry point. The Dockerfile runs exactly this; tests/test_container.py runs it
# into a temporary directory and serves from the result, so the image's contents are tested.
#   container/install.sh SRC PREFIX
set -eu
src=$1
prefix=$2
python3 -m venv "$prefix"
"$prefix/bin/pip" install --quiet --disable-pip-version-check "$src[postgres]"
# The image runs as a user who cannot write here: compile now, once, not at every start.
"$prefix/bin/python" -m compileall -q "$prefix/lib" >/dev/null
install -m 0755 "$src/container/healthcheck.py" "$prefix/bin/ecr-emulator-healthcheck"
