"""The image digests `make push` recorded in deploy/pushed-images.env.

Lines are KEY=VALUE; blank lines and lines starting with # are ignored. Environment
variables of the same names win over the file; PUSHED_IMAGES_FILE names another file.
"""

import re
from pathlib import Path

KEYS = ("PUSHED_WEB_IMAGE", "PUSHED_NGINX_IMAGE")
DEFAULT_FILE = Path(__file__).resolve().parent.parent / "pushed-images.env"
PINNED = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")


class ImagesError(ValueError):
    """The images are missing or not pinned; the message says what to do."""


def read_env_file(path):
    values = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, separator, value = line.partition("=")
        if not separator:
            raise ImagesError(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
        values[key.strip()] = value.strip()
    return values


def pushed_images(environ, path=None):
    """{"PUSHED_WEB_IMAGE": ..., "PUSHED_NGINX_IMAGE": ...}, each pinned by digest."""
    path = Path(path or environ.get("PUSHED_IMAGES_FILE") or DEFAULT_FILE)
    from_file = read_env_file(path) if path.is_file() else {}
    images = {key: environ.get(key) or from_file.get(key) for key in KEYS}
    missing = [key for key, value in images.items() if not value]
    if missing:
        raise ImagesError(
            f"no {' or '.join(missing)} in {path} or the environment: run `make push` first "
            "(it writes that file), or set PUSHED_WEB_IMAGE and PUSHED_NGINX_IMAGE to "
            "image references pinned by digest"
        )
    for key, value in images.items():
        if not PINNED.match(value):
            raise ImagesError(
                f"{key}={value} is not pinned by digest: use <repository>@sha256:<64 hex> "
                "(a tag can be pushed again; a digest always names the same image)"
            )
    return images
