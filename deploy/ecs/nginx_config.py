"""Facts read from the nginx image's own config files, so the deployment is checked
against what nginx really does rather than against a copy of it."""

import re
from pathlib import Path

NGINX_DIR = Path(__file__).resolve().parents[2] / "services" / "nginx"
SITE_TEMPLATE = NGINX_DIR / "templates" / "default.conf.template"
# The locations every server of the site shares (the plain-HTTP one and, with TLS, HTTPS).
ROUTES_TEMPLATE = NGINX_DIR / "templates" / "site" / "routes.conf.template"
MAIN_CONFIG = NGINX_DIR / "nginx.conf"
# The image's settings' defaults, one `export NAME="${NAME:-default}"` line each.
DEFAULTS = NGINX_DIR / "defaults.envsh"

# http://nginx.org/en/docs/syntax.html: a time without a unit is in seconds.
TIME_UNITS = {"ms": 0.001, "": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(value):
    """An nginx time ("25s", "1m", "1m30s", "500ms", "30") in seconds."""
    parts = re.findall(r"(\d+)(ms|[smhd]?)", value.strip())
    if not parts or "".join(number + unit for number, unit in parts) != value.strip():
        raise ValueError(f"not an nginx time: {value!r}")
    return sum(int(number) * TIME_UNITS[unit] for number, unit in parts)


def _without_comments(text):
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def listen_ports(site_template=SITE_TEMPLATE):
    """The ports of the site's `listen` directives."""
    text = _without_comments(Path(site_template).read_text(encoding="utf-8"))
    return [int(port) for port in re.findall(r"^\s*listen\s+(?:[\w.\[\]:]*:)?(\d+)\b", text, re.MULTILINE)]


def public_exact_locations(site_template=ROUTES_TEMPLATE):
    """Paths of `location = /path` blocks that anyone may request: not `internal`, not
    restricted with `deny all`."""
    text = _without_comments(Path(site_template).read_text(encoding="utf-8"))
    paths = []
    for path, body in re.findall(r"location\s*=\s*(\S+)\s*\{([^}]*)\}", text):
        if re.search(r"^\s*(internal|deny\s+all)\s*;", body, re.MULTILINE):
            continue
        paths.append(path)
    return paths


def keepalive_timeout(main_config=MAIN_CONFIG):
    """Seconds nginx keeps an idle client connection open (the http block's keepalive_timeout)."""
    text = _without_comments(Path(main_config).read_text(encoding="utf-8"))
    found = re.search(r"^\s*keepalive_timeout\s+(\S+?)\s*[;\s]", text, re.MULTILINE)
    # nginx's built-in default: http://nginx.org/en/docs/http/ngx_http_core_module.html#keepalive_timeout
    return seconds(found.group(1)) if found else 75


def defaults(defaults_file=DEFAULTS):
    """{name: default} of the image's settings: what a task gets for a variable it leaves unset."""
    text = _without_comments(Path(defaults_file).read_text(encoding="utf-8"))
    return dict(re.findall(r'^export ([A-Z][A-Z0-9_]*)="\$\{\1:-([^}]*)\}"$', text, re.MULTILINE))


def setting(environment, name, defaults_file=DEFAULTS):
    """A setting as the image applies it: the task's value, or the default when unset or empty."""
    return environment.get(name) or defaults(defaults_file)[name]
