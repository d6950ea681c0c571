"""`make push` against a real registry server on 127.0.0.1 (Debian's docker-registry, with
htpasswd authentication), and the ECR login pipe against a local STAND-IN for AWS's API."""

import base64
import json
import os
import secrets
import subprocess

import boto3
import docker
import pytest

from aws_stand_in import VENV_BIN, aws_api_stand_in
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


def make_push(env, timeout=900):
    """`make push` as a user runs it; returns the finished process, whatever its status."""
    return subprocess.run(["make", "push"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def pushed_registries():
    """Registries a test pushes to; the local images named after them are removed when it
    ends, pass or fail."""
    registries = []
    yield registries
    for host in registries:
        forget_local_images(host)


@pytest.fixture
def docker_config(tmp_path):
    """The environment for the Docker CLI and make: a Docker config folder of this test's
    own (its logins never touch the user's), and the test venv's tools (aws) on PATH."""
    folder = tmp_path / "docker-config"
    folder.mkdir()
    return {**os.environ, "DOCKER_CONFIG": str(folder), "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}


def test_make_push_pins_both_images_by_digest_and_the_pulled_images_run_the_stack(
    tmp_path, docker_config, pushed_registries
):
    password = secrets.token_urlsafe(16)
    with registry_server(tmp_path / "registry", {"pusher": password}) as host:
        pushed_registries.append(host)
        docker_login(host, "pusher", password, docker_config)
        release = f"test-{secrets.token_hex(4)}"
        images_file = tmp_path / "pushed-images.env"
        pushed = make_push(
            {
                **docker_config,
                "REGISTRY": host,
                "RELEASE_TAG": release,
                "ALLOW_DIRTY": "1",
                "PUSHED_IMAGES_FILE": str(images_file),
            }
        )
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        written = read_env_file(images_file)
        registry = RegistryClient(host, "pusher", password)
        # The images' platform, as the engine built them: this machine's.
        architecture = {"x86_64": "amd64", "aarch64": "arm64"}[docker.from_env().info()["Architecture"]]
        assert written["PUSHED_PLATFORMS"] == f"linux/{architecture}", written

        for name in ("web", "nginx"):
            reference = written[f"PUSHED_{name.upper()}_IMAGE"]
            repository_ref, _, digest = reference.partition("@")
            assert repository_ref == f"{host}/flask-stack/{name}", reference
            repository = f"flask-stack/{name}"
            # Tagged with the commit (marked dirty or not) and the release, and nothing else: never latest.
            tags = image_tags(registry.tags(repository))
            assert release in tags and "latest" not in tags and len(tags) == 2, tags
            (commit_tag,) = tags - {release}
            assert commit_tag.startswith(written["PUSHED_COMMIT"]), (commit_tag, written)
            # The digest written down is the one the registry serves for both tags.
            for tag in tags:
                assert registry.manifest(repository, tag)[0] == digest, (name, tag)
            # Every blob the manifest names is in the registry: a pull needs nothing local.
            _, manifest = registry.manifest(repository, digest)
            blobs = [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]
            assert all(registry.has_blob(repository, blob) for blob in blobs), name
            # Its SBOM is attached to that digest, describes that image, and is in the digests file.
            sbom_reference, sbom = registry.sbom(repository, digest)
            check_sbom_describes(registry, repository, digest, sbom, f"linux/{architecture}", SBOM_PACKAGES[name])
            assert written[f"PUSHED_{name.upper()}_SBOMS"] == f"linux/{architecture}={repository_ref}@{sbom_reference}"
            kept = images_file.parent / "pushed-images-sboms" / f"{name}-{architecture}.cdx.json"
            assert json.loads(kept.read_text()) == sbom, kept

        forget_local_images(host)
        client = docker.from_env()
        for key in ("PUSHED_WEB_IMAGE", "PUSHED_NGINX_IMAGE"):
            with pytest.raises(docker.errors.ImageNotFound):
                client.images.get(written[key])

        # The stack from the pulled images, as `make up-pushed` runs it: no build.
        # The digests in its environment too, so that `down` reads the same overlay.
        pulled = Stack(
            "pushed", compose_files=("compose.yaml", "deploy/compose.pushed.yaml"), env={**docker_config, **written}
        )
        try:
            pulled.make("up-pushed", f"PUSHED_IMAGES_FILE={images_file}", timeout=600)
            running = {service: pulled.running(service) for service in ("web", "nginx")}
            for service, key in (("web", "PUSHED_WEB_IMAGE"), ("nginx", "PUSHED_NGINX_IMAGE")):
                assert [c.attrs["Config"]["Image"] for c in running[service]] == [written[key]]
            assert pulled.get("/healthz").json() == {"status": "ok"}
            whoami = pulled.get("/api/whoami").json()
            assert whoami["version"] == commit_tag, whoami
            assert pulled.get("/static/css/site.css").status_code == 200
        finally:
            pulled.down()


def test_ecr_login_pipe_logs_in_with_the_token_from_the_aws_api_stand_in(tmp_path, docker_config, pushed_registries):
    # STAND-IN: moto's server answers ECR's API locally; no request reaches AWS.
    with aws_api_stand_in(tmp_path / "aws") as aws_env:
        ecr = boto3.client(
            "ecr",
            endpoint_url=aws_env["AWS_ENDPOINT_URL"],
            region_name=aws_env["AWS_REGION"],
            aws_access_key_id=aws_env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=aws_env["AWS_SECRET_ACCESS_KEY"],
        )
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        user, _, password = base64.b64decode(token).decode().partition(":")
        assert user == "AWS"
        # The registry accepts the token as the AWS user's password, as ECR does.
        with registry_server(tmp_path / "registry", {"AWS": password}) as host:
            pushed_registries.append(host)
            env = {
                **docker_config,
                **aws_env,
                "REGISTRY": host,
                "REGISTRY_LOGIN": "ecr",
                "ALLOW_DIRTY": "1",
                "PUSHED_IMAGES_FILE": str(tmp_path / "pushed-images.env"),
            }

            # Not logged in, the push is refused: the registry really checks credentials.
            refused = make_push({**env, "REGISTRY_LOGIN": "none"})
            assert refused.returncode != 0
            assert "no basic auth credentials" in refused.stdout + refused.stderr

            pushed = make_push(env)
            output = pushed.stdout + pushed.stderr
            assert pushed.returncode == 0, output
            assert f"logging in to {host} (ECR, eu-west-1)" in output and "Login Succeeded" in output
            auths = json.loads((tmp_path / "docker-config" / "config.json").read_text())["auths"]
            assert base64.b64decode(auths[host]["auth"]).decode() == f"AWS:{password}"
            written = read_env_file(tmp_path / "pushed-images.env")
            digest = written["PUSHED_WEB_IMAGE"].partition("@")[2]
            registry = RegistryClient(host, "AWS", password)
            (tag,) = image_tags(registry.tags("flask-stack/web"))
            assert registry.manifest("flask-stack/web", tag)[0] == digest


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"REGISTRY": ""}, "REGISTRY is not set"),
        ({"REGISTRY": "https://127.0.0.1:1"}, "is not host[:port]"),
        ({"REGISTRY": "127.0.0.1:1/team"}, "is not host[:port]"),
        ({"REGISTRY": "127.0.0.1:1", "IMAGE_REPOSITORY_PREFIX": "Team/Stack"}, "is not a repository path"),
        ({"REGISTRY": "127.0.0.1:1", "RELEASE_TAG": "latest"}, "RELEASE_TAG=latest pins nothing"),
        ({"REGISTRY": "127.0.0.1:1", "RELEASE_TAG": "no spaces"}, "is not a valid image tag"),
        ({"REGISTRY": "127.0.0.1:1", "REGISTRY_LOGIN": "maybe"}, "REGISTRY_LOGIN must be auto, ecr or none"),
        ({"REGISTRY": "127.0.0.1:1", "PLATFORMS": "linux/s390x"}, "is not linux/amd64 or linux/arm64"),
        ({"REGISTRY": "127.0.0.1:1", "PLATFORMS": "linux/arm64,linux/arm64"}, "names a platform twice"),
        ({"REGISTRY": "127.0.0.1:1", "SBOM": "maybe"}, "SBOM must be on or off"),
        (
            {"REGISTRY": "127.0.0.1:1", "REGISTRY_LOGIN": "ecr", "AWS_REGION": "", "AWS_DEFAULT_REGION": ""},
            "needs AWS_REGION",
        ),
    ],
)
def test_make_push_refuses_settings_it_cannot_honour_before_building(settings, message, docker_config):
    refused = make_push({**docker_config, "ALLOW_DIRTY": "1", **settings}, timeout=60)
    assert refused.returncode != 0
    assert message in refused.stderr
    assert "building" not in refused.stdout


def test_make_push_refuses_uncommitted_changes_to_the_images(tmp_path):
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(checkout)], check=True, timeout=120)
    (checkout / "services" / "web" / "app" / "uncommitted.py").write_text("# not committed\n")
    refused = subprocess.run(
        # SBOM=off: the clone has no SBOM tools installed, and that check comes before this one.
        ["make", "push", "REGISTRY=127.0.0.1:1", "SBOM=off"],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    assert "services/ has uncommitted changes" in refused.stderr
