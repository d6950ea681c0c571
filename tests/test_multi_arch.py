"""`make push PLATFORMS=linux/amd64,linux/arm64` against a real registry server on 127.0.0.1:
one manifest list per image and tag, naming both CPUs, pinned by digest; then the arm64
images, pulled by that digest, run the stack under QEMU's emulation (install-qemu.sh) and
pass the smoke checks. `make test-arm64` runs this file (slow: the other CPU is emulated)."""

import os
import secrets
import subprocess
import time

import docker
import pytest
import requests

from composed import ROOT, Stack
from registry import (
    SBOM_PACKAGES,
    RegistryClient,
    check_sbom_describes,
    docker_login,
    forget_local_images,
    image_tags,
    read_env_file,
    registry_server,
)

pytestmark = pytest.mark.arm64

PLATFORMS = {"linux/amd64", "linux/arm64"}
LIST_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}


def emulator_registered():
    path = "/proc/sys/fs/binfmt_misc/qemu-aarch64"
    return os.path.exists(path) and open(path).read().startswith("enabled")


@pytest.fixture
def docker_config(tmp_path):
    folder = tmp_path / "docker-config"
    folder.mkdir()
    return {**os.environ, "DOCKER_CONFIG": str(folder)}


def run(command, env, timeout):
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def config_of(registry, repository, manifest):
    """The image config a platform's manifest names: what the image was really built for."""
    answer = requests.get(
        f"{registry.base}/{repository}/blobs/{manifest['config']['digest']}", auth=registry.auth, timeout=30
    )
    answer.raise_for_status()
    return answer.json()


def test_make_push_for_both_cpus_writes_one_manifest_list_per_image_and_the_arm64_stack_serves(tmp_path, docker_config):
    if not emulator_registered():
        message = "no arm64 emulator: run scripts/docker-host/install-qemu.sh (as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    password = secrets.token_urlsafe(16)
    with registry_server(tmp_path / "registry", {"pusher": password}) as host:
        try:
            docker_login(host, "pusher", password, docker_config)
            # The base images as the official tags are: one name, both CPUs (here stand-ins
            # built from Debian's packages, in this registry).
            bases = run(["scripts/docker-host/publish-base-images.sh", host], docker_config, 1800).stdout
            base_args = dict(line.split("=", 1) for line in bases.split())
            assert set(base_args) == {"PYTHON_IMAGE", "NGINX_IMAGE"}, bases

            release = f"test-{secrets.token_hex(4)}"
            images_file = tmp_path / "pushed-images.env"
            started = time.monotonic()
            run(
                ["make", "push"],
                {
                    **docker_config,
                    **base_args,
                    "REGISTRY": host,
                    "PLATFORMS": "linux/amd64,linux/arm64",
                    "RELEASE_TAG": release,
                    "ALLOW_DIRTY": "1",
                    "PUSHED_IMAGES_FILE": str(images_file),
                },
                3600,
            )
            print(f"make push for both CPUs: {time.monotonic() - started:.0f} s")
            written = read_env_file(images_file)
            assert written["PUSHED_PLATFORMS"] == "linux/amd64,linux/arm64", written

            registry = RegistryClient(host, "pusher", password)
            for name in ("web", "nginx"):
                repository = f"flask-stack/{name}"
                reference = written[f"PUSHED_{name.upper()}_IMAGE"]
                assert reference.startswith(f"{host}/{repository}@sha256:"), reference
                digest = reference.partition("@")[2]
                tags = image_tags(registry.tags(repository))
                (commit_tag,) = {
                    tag
                    for tag in tags
                    if tag.startswith(written["PUSHED_COMMIT"]) and not tag.endswith(("-amd64", "-arm64"))
                }
                # Each CPU's image under its own tag, then the list under the commit and the release.
                assert tags == {commit_tag, release, f"{commit_tag}-amd64", f"{commit_tag}-arm64"}, tags
                for tag in (commit_tag, release):
                    assert registry.manifest(repository, tag)[0] == digest, (name, tag)
                _, index = registry.manifest(repository, digest)
                assert index["mediaType"] in LIST_TYPES, index
                listed = {
                    f"{entry['platform']['os']}/{entry['platform']['architecture']}": entry["digest"]
                    for entry in index["manifests"]
                }
                assert set(listed) == PLATFORMS, index
                print(f"{repository}@{digest}: " + ", ".join(f"{p} {d}" for p, d in sorted(listed.items())))
                for platform, child in listed.items():
                    _, manifest = registry.manifest(repository, child)
                    config = config_of(registry, repository, manifest)
                    assert f"{config['os']}/{config['architecture']}" == platform, (name, platform, config)
                    assert all(registry.has_blob(repository, layer["digest"]) for layer in manifest["layers"])
                    # Each CPU's image carries the SBOM of its own packages.
                    sbom_reference, sbom = registry.sbom(repository, child)
                    check_sbom_describes(registry, repository, child, sbom, platform, SBOM_PACKAGES[name])
                    assert f"{platform}={host}/{repository}@{sbom_reference}" in written[
                        f"PUSHED_{name.upper()}_SBOMS"
                    ].split(","), written

            # The arm64 images, pulled by the list's digest, run the stack as make up-pushed does.
            forget_local_images(host)
            pulled = Stack(
                "arm64",
                compose_files=("compose.yaml", "deploy/compose.pushed.yaml"),
                env={**docker_config, **written, "DOCKER_DEFAULT_PLATFORM": "linux/arm64"},
            )
            try:
                started = time.monotonic()
                try:
                    pulled.make("up-pushed", f"PUSHED_IMAGES_FILE={images_file}", timeout=1200)
                except subprocess.CalledProcessError as failed:
                    raise AssertionError(f"make up-pushed:\n{failed.stdout}\n{failed.stderr}") from None
                print(f"make up-pushed, arm64 under emulation: {time.monotonic() - started:.0f} s")
                client = docker.from_env()
                for service in ("web", "nginx"):
                    (container,) = pulled.running(service)
                    image = client.images.get(container.attrs["Image"])
                    assert image.attrs["Architecture"] == "arm64", (service, image.attrs["Architecture"])
                    machine = container.exec_run(["uname", "-m"]).output.decode().strip()
                    assert machine == "aarch64", (service, machine)
                assert pulled.get("/healthz", timeout=30).json() == {"status": "ok"}
                whoami = pulled.get("/api/whoami", timeout=30).json()
                assert whoami["version"] == commit_tag, whoami
                page = pulled.get("/", timeout=30)
                assert page.status_code == 200 and page.headers.get("X-Request-ID"), page.headers
                assert pulled.get("/static/css/site.css", timeout=30).status_code == 200
                assert pulled.get("/no-such-page", timeout=30).status_code == 404
            finally:
                pulled.down()
        finally:
            forget_local_images(host)
            subprocess.run(["docker", "logout", host], env=docker_config, capture_output=True, timeout=60)
