#!/usr/bin/env bash
# Re-locks requirements.in files into requirements.txt with hashes. The web image's lock
# is made inside the base image, so markers resolve for the Python that runs it.
set -o errexit -o pipefail -o nounset
cd "$(dirname "$0")/.."

pip_tools="pip-tools==7.6.2"
compile_flags=(--quiet --generate-hashes --allow-unsafe --strip-extras --no-header)
python_image=${PYTHON_IMAGE:-python:3.14-slim-trixie}

docker run --rm --user "$(id -u):$(id -g)" -e HOME=/tmp -v "$PWD/services/web:/lock" -w /lock "$python_image" \
  sh -c "python -m venv /tmp/lock && /tmp/lock/bin/pip install --quiet $pip_tools \
         && /tmp/lock/bin/pip-compile ${compile_flags[*]} --output-file requirements.txt requirements.in"

python3 -m venv /tmp/lock-tests
/tmp/lock-tests/bin/pip install --quiet "$pip_tools"
(cd tests && /tmp/lock-tests/bin/pip-compile "${compile_flags[@]}" --output-file requirements.txt requirements.in)
(cd tools/lint && /tmp/lock-tests/bin/pip-compile "${compile_flags[@]}" --output-file requirements.txt requirements.in)
echo "locked: services/web/requirements.txt tests/requirements.txt tools/lint/requirements.txt"
