#!/usr/bin/env bash
# Re-locks requirements.in files into requirements.txt with hashes. The web image's lock
# is made inside the base image, so markers resolve for the Python that runs it.
set -o errexit -o pipefail -o nounset
cd "$(dirname "$0")/.."

pip_tools="pip-tools==7.6.2"
compile_flags=(--quiet --generate-hashes --allow-unsafe --strip-extras --no-header)
python_image=${PYTHON_IMAGE:-$(scripts/dockerfile-arg.sh services/web/Dockerfile PYTHON_IMAGE)}

# Locks <folder>/requirements.in inside the base image. The whole tree is mounted, so a
# lock may constrain itself by another (the bench servers by the web image's lock).
lock_in_image() {
  docker run --rm --user "$(id -u):$(id -g)" -e HOME=/tmp -v "$PWD:/lock" -w "/lock/$1" "$python_image" \
    sh -c "python -m venv /tmp/lock && /tmp/lock/bin/pip install --quiet $pip_tools \
           && /tmp/lock/bin/pip-compile ${compile_flags[*]} --output-file requirements.txt requirements.in"
}
lock_in_image services/web
lock_in_image bench/servers
lock_in_image bench/loadgen
lock_in_image services/acme

python3 -m venv /tmp/lock-tests
/tmp/lock-tests/bin/pip install --quiet "$pip_tools"
(cd deploy/ecs && /tmp/lock-tests/bin/pip-compile "${compile_flags[@]}" --output-file requirements.txt requirements.in)
(cd tests && /tmp/lock-tests/bin/pip-compile "${compile_flags[@]}" --output-file requirements.txt requirements.in)
(cd tools/lint && /tmp/lock-tests/bin/pip-compile "${compile_flags[@]}" --output-file requirements.txt requirements.in)
echo "locked: services/web bench/servers bench/loadgen services/acme deploy/ecs tests tools/lint (requirements.txt in each)"
