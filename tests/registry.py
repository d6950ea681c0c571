"""A throwaway image registry on 127.0.0.1: Debian's docker-registry package (the CNCF
distribution server), with htpasswd authentication, its storage in a temporary folder."""

import contextlib
import json
import os
import shutil
import subprocess
import time
from contextlib import contextmanager

import docker
import pytest
import requests

from composed import free_loopback_port


def require_tool(name, install_hint):
    """The tool's path; under CI a missing tool fails its test, elsewhere it skips it."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not installed: {install_hint}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@contextmanager
def registry_server(folder, users):
    """A registry accepting only `users` ({name: password}); yields its host:port."""
    server = require_tool("docker-registry", "run scripts/install-registry.sh (as root)")
    htpasswd = require_tool("htpasswd", "run scripts/install-registry.sh (as root)")
    folder.mkdir(parents=True, exist_ok=True)
    password_file = folder / "htpasswd"
    password_file.write_text("")
    for name, password in users.items():
        # bcrypt (-B) is the only scheme the registry accepts; the password goes on stdin.
        subprocess.run(
            [htpasswd, "-B", "-i", str(password_file), name], input=password, text=True, check=True, capture_output=True
        )
    port = free_loopback_port()
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {folder / 'storage'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"auth:\n  htpasswd:\n    realm: test-registry\n    path: {password_file}\n"
    )
    log = (folder / "registry.log").open("w")
    process = subprocess.Popen([server, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    host = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                # Up and asking for credentials: the API's base answers 401 without them.
                if requests.get(f"http://{host}/v2/", timeout=2).status_code == 401:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"registry did not start: {(folder / 'registry.log').read_text()}")
            time.sleep(0.1)
        yield host
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def docker_login(host, user, password, env):
    """`docker login` to the registry, the password on stdin, with `env` (its DOCKER_CONFIG
    decides where the login is kept)."""
    subprocess.run(
        ["docker", "login", host, "--username", user, "--password-stdin"],
        input=password,
        text=True,
        check=True,
        capture_output=True,
        env=env,
        timeout=60,
    )


# The manifest kinds docker push writes; the registry answers with the one it stored.
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


class RegistryClient:
    """The registry's HTTP API (distribution spec), as one user."""

    def __init__(self, host, user, password):
        self.base = f"http://{host}/v2"
        self.auth = (user, password)

    def manifest(self, repository, reference):
        """(digest, manifest) of a tag or digest, as the registry stores it."""
        answer = requests.get(
            f"{self.base}/{repository}/manifests/{reference}",
            auth=self.auth,
            headers={"Accept": MANIFEST_TYPES},
            timeout=10,
        )
        answer.raise_for_status()
        return answer.headers["Docker-Content-Digest"], answer.json()

    def tags(self, repository):
        answer = requests.get(f"{self.base}/{repository}/tags/list", auth=self.auth, timeout=10)
        answer.raise_for_status()
        return set(answer.json()["tags"])

    def has_blob(self, repository, digest):
        answer = requests.head(f"{self.base}/{repository}/blobs/{digest}", auth=self.auth, timeout=10)
        return answer.status_code == 200

    def blob(self, repository, digest):
        answer = requests.get(f"{self.base}/{repository}/blobs/{digest}", auth=self.auth, timeout=30)
        answer.raise_for_status()
        return answer.content

    def referrers(self, repository, digest):
        """The descriptors of the artifacts whose subject is `digest`: from the referrers API
        (OCI distribution 1.1), or, where the registry has none (Debian's 2.8 answers 404),
        from the index the 1.1 spec's fallback tags `sha256-<hex>`."""
        answer = requests.get(f"{self.base}/{repository}/referrers/{digest}", auth=self.auth, timeout=10)
        if answer.status_code == 200:
            return answer.json()["manifests"]
        assert answer.status_code == 404, answer.status_code
        try:
            return self.manifest(repository, digest.replace(":", "-"))[1]["manifests"]
        except requests.HTTPError as error:
            if error.response.status_code == 404:
                return []
            raise

    def sbom(self, repository, digest):
        """The CycloneDX SBOM attached to `digest` (one, or the test fails), as JSON."""
        found = [d for d in self.referrers(repository, digest) if d.get("artifactType") == SBOM_TYPE]
        assert len(found) == 1, f"{repository}@{digest}: {len(found)} SBOM referrers"
        reference, artifact = self.manifest(repository, found[0]["digest"])
        assert artifact["subject"]["digest"] == digest and artifact["artifactType"] == SBOM_TYPE, artifact
        (layer,) = artifact["layers"]
        assert layer["mediaType"] == SBOM_TYPE, layer
        return reference, json.loads(self.blob(repository, layer["digest"]))


SBOM_TYPE = "application/vnd.cyclonedx+json"
# What each image's SBOM must list, at least: its OS's packages and the server it runs.
SBOM_PACKAGES = {
    "web": ("pkg:deb/debian/", "pkg:pypi/gunicorn@", "pkg:pypi/flask@"),
    "nginx": ("pkg:deb/debian/nginx@",),
}


def image_tags(tags):
    """A repository's tags less the referrers fallback's (`sha256-<hex>`, where a registry
    without the OCI 1.1 referrers API keeps the list of an image's SBOMs)."""
    return {tag for tag in tags if not (tag.startswith("sha256-") and len(tag) == 71)}


def check_sbom_describes(registry, repository, digest, sbom, platform, packages):
    """The SBOM is of the image `digest` names: its config (the image's id), its CPU, and
    the `packages` (purl prefixes) it must list."""
    _, manifest = registry.manifest(repository, digest)
    properties = {p["name"]: p["value"] for p in sbom["metadata"]["properties"]}
    assert sbom["bomFormat"] == "CycloneDX", sbom["bomFormat"]
    assert properties["oci:image:Id"] == manifest["config"]["digest"], (properties, manifest["config"])
    assert properties["oci:image:Architecture"] == platform.partition("/")[2], properties
    purls = [component.get("purl", "") for component in sbom["components"]]
    for prefix in packages:
        assert any(purl.startswith(prefix) for purl in purls), f"{repository}@{digest}: no {prefix} in its SBOM"


def read_env_file(path):
    """The KEY=VALUE lines of a file such as deploy/pushed-images.env."""
    values = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def forget_local_images(registry):
    """Remove every local name (tag or digest) under this registry (host:port/...), so what
    runs next must be pulled from it. Names only: an image that also has other names (a base
    image pushed there, a build also tagged locally) keeps them and stays."""
    client = docker.from_env()
    for image in client.images.list():
        for name in image.tags + image.attrs.get("RepoDigests", []):
            if name.startswith(f"{registry}/"):
                with contextlib.suppress(docker.errors.NotFound):
                    client.images.remove(name, force=True)
