"""Only nginx is reachable from the host; nothing runs as root; nginx's config is valid."""


def process_uids(container):
    """The real uid of every process in the container, read from /proc."""
    result = container.exec_run(["sh", "-c", "cat /proc/[0-9]*/status"], user="")
    uids = [line.split()[1] for line in result.output.decode().splitlines() if line.startswith("Uid:")]
    assert uids, result.output
    return {int(uid) for uid in uids}


def test_web_publishes_no_host_port(stack):
    for web in stack.running("web"):
        web.reload()
        assert not web.attrs["HostConfig"]["PortBindings"]
        assert all(binding is None for binding in web.attrs["NetworkSettings"]["Ports"].values())


def test_only_nginx_publishes_and_only_on_loopback(stack):
    (nginx,) = stack.running("nginx")
    nginx.reload()
    bindings = nginx.attrs["NetworkSettings"]["Ports"]["8080/tcp"]
    assert bindings == [{"HostIp": "127.0.0.1", "HostPort": str(stack.port)}]


def test_no_process_runs_as_root(stack):
    for container in stack.running("web") + stack.running("nginx"):
        uids = process_uids(container)
        assert 0 not in uids, f"{container.name} runs processes as root: {uids}"


def test_nginx_config_test_passes(stack):
    (nginx,) = stack.running("nginx")
    result = nginx.exec_run(["nginx", "-t"])
    output = result.output.decode()
    assert result.exit_code == 0, output
    assert "syntax is ok" in output and "test is successful" in output


def test_nginx_hides_its_version(stack):
    response = stack.get("/api/nope")
    assert response.headers["Server"] == "nginx"
    assert "nginx/" not in stack.get("/no-such-page").text
