"""The knobs the stack's code reads, collected from the code itself rather than from a list:
the web image's Python (parsed with ast), nginx's templates and start-up scripts, and the
compose files. tests/test_repository_contract.py compares them with .env.example and the docs.
"""

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from composed import ROOT

WEB = ROOT / "services" / "web"
NGINX = ROOT / "services" / "nginx"
ACME = ROOT / "services" / "acme"
# The files `docker compose` reads, in the order the Makefile and the docs add them.
COMPOSE_FILES = (
    "compose.yaml",
    "compose.db.yaml",
    "compose.override.yaml",
    "compose.prod.yaml",
    "compose.tls.yaml",
    "compose.acme.yaml",
)
# nginx's defaults: sourced by the image's entrypoint before anything reads the settings.
NGINX_DEFAULTS = NGINX / "defaults.envsh"

KNOB = re.compile(r"^[A-Z][A-Z0-9_]*$")
# A WSGI environ holds the request's CGI variables (PEP 3333) beside the process's: a
# function handed `environ` by a server reads these, never a knob.
WSGI_REQUEST_KEYS = frozenset(
    {
        "REQUEST_METHOD",
        "SCRIPT_NAME",
        "PATH_INFO",
        "QUERY_STRING",
        "CONTENT_TYPE",
        "CONTENT_LENGTH",
        "SERVER_NAME",
        "SERVER_PORT",
        "SERVER_PROTOCOL",
    }
)
# Mapping methods that read a key (a store, `environ["X"] = ...`, is the code setting it).
READING_METHODS = frozenset({"get", "pop", "setdefault"})


@dataclass(frozen=True)
class Read:
    """One place the web image's code reads an environment variable."""

    name: str
    path: Path
    line: int
    # The call to the stack's reader (stack/env.py) as source, or None for a plain mapping
    # read: evaluated on a made-up environment, it tells what the code makes of a value.
    call: str | None = None

    def where(self):
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def web_python_files(root=WEB):
    """Every Python file of the web image except its tests."""
    return sorted(path for path in Path(root).rglob("*.py") if "tests" not in path.relative_to(root).parts)


def _is_os_environ(node):
    return isinstance(node, ast.Attribute) and node.attr == "environ" and _name(node.value) == "os"


def _name(node):
    return node.id if isinstance(node, ast.Name) else None


def _constant_knob(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and KNOB.match(node.value):
        return node.value
    return None


def reads_in(source, path):
    """(reads, writes): each knob the module reads, and the names it sets in os.environ."""
    tree = ast.parse(source, filename=str(path))
    # Names a module imports from stack.env (`from .env import whole`) read knobs too.
    env_functions = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1] == "env"
        for alias in node.names
    }
    reads, writes = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            function = node.func
            reader = (isinstance(function, ast.Attribute) and _name(function.value) == "env") or (
                _name(function) in env_functions
            )
            if reader:
                for argument in node.args:
                    name = _constant_knob(argument)
                    if name:
                        reads.append(Read(name, path, node.lineno, ast.unparse(node)))
                continue
            # os.getenv("NAME")
            if isinstance(function, ast.Attribute) and function.attr == "getenv" and _name(function.value) == "os":
                name = _constant_knob(node.args[0]) if node.args else None
                if name:
                    reads.append(Read(name, path, node.lineno))
                continue
            # environ.get("NAME"), os.environ.get("NAME"), ...
            if isinstance(function, ast.Attribute) and function.attr in READING_METHODS and node.args:
                mapping = function.value
                name = _constant_knob(node.args[0])
                if name and (_is_os_environ(mapping) or (_name(mapping) == "environ" and not _is_request_key(name))):
                    reads.append(Read(name, path, node.lineno))
        elif isinstance(node, ast.Subscript):
            mapping = node.value
            name = _constant_knob(node.slice)
            if not name or not (_is_os_environ(mapping) or _name(mapping) == "environ"):
                continue
            if isinstance(node.ctx, ast.Store):
                if _is_os_environ(mapping):
                    writes.add(name)
            elif _is_os_environ(mapping) or not _is_request_key(name):
                reads.append(Read(name, path, node.lineno))
    return reads, writes


def _is_request_key(name):
    return name in WSGI_REQUEST_KEYS or name.startswith("HTTP_")


def web_reads(root=WEB):
    """(reads, writes) over every Python file of the web image."""
    reads, writes = [], set()
    for path in web_python_files(root):
        found, written = reads_in(path.read_text(encoding="utf-8"), path)
        reads += found
        writes |= written
    return reads, writes


def acme_reads(root=ACME):
    """Each knob the acme image's renewal job reads (services/acme/renewal, its tests aside)."""
    reads = []
    for path in web_python_files(root):
        found, _ = reads_in(path.read_text(encoding="utf-8"), path)
        reads += found
    return reads


def _without_comment_lines(text):
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


SHELL_VARIABLE = re.compile(r"\$\{?([A-Z][A-Z0-9_]*)")


def nginx_knobs(root=NGINX):
    """{name: [file, ...]} of each upper-case variable nginx's templates (rendered by
    envsubst) and its start-up scripts read; nginx's own variables are lower-case."""
    files = sorted((Path(root) / "templates").rglob("*.template"))
    files += sorted(path for path in Path(root).iterdir() if path.suffix in (".sh", ".envsh"))
    found = {}
    for path in files:
        for name in SHELL_VARIABLE.findall(_without_comment_lines(path.read_text(encoding="utf-8"))):
            found.setdefault(name, []).append(path)
    return found


def nginx_defaults(path=NGINX_DEFAULTS):
    """{name: default} from the defaults file, whose lines read `export NAME="${NAME:-default}"`."""
    text = _without_comment_lines(Path(path).read_text(encoding="utf-8"))
    return dict(re.findall(r'^export ([A-Z][A-Z0-9_]*)="\$\{\1:-([^}]*)\}"$', text, flags=re.MULTILINE))


INTERPOLATION = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def compose_interpolations(files=COMPOSE_FILES, root=ROOT):
    """{name: [(file, operator, default), ...]} of each ${NAME...} in the files."""
    found = {}
    for name in files:
        text = _without_comment_lines((Path(root) / name).read_text(encoding="utf-8"))
        for var, operator, default in INTERPOLATION.findall(text):
            found.setdefault(var, []).append((name, operator, default))
    return found


def service_environments(path):
    """{service: {name: value}} of a compose file's `environment` mappings, as written."""
    document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return {
        service: dict(spec.get("environment") or {})
        for service, spec in (document.get("services") or {}).items()
        if isinstance(spec.get("environment"), dict)
    }


def _namespace(path):
    """The globals a read's call runs with: its module's, for a module of the stack."""
    import importlib

    from stack import env

    relative = Path(path).relative_to(WEB).with_suffix("")
    if relative.parts[0] == "stack":
        return dict(vars(importlib.import_module(".".join(relative.parts))))
    # gunicorn.conf.py is a config file gunicorn runs, not a module to import: its reads
    # run with the reader alone, which is enough for a literal default.
    return {"env": env, **{name: getattr(env, name) for name in dir(env) if not name.startswith("_")}}


def value_of(read, environ):
    """What the code makes of `environ` at this read: the reader's call as written, on it."""
    call = ast.parse(read.call, mode="eval").body
    call.args[0] = ast.Name("__environ__", ast.Load())
    namespace = {**_namespace(read.path), "__environ__": environ}
    code = compile(ast.fix_missing_locations(ast.Expression(call)), read.where(), "eval")
    # The expression is the repository's own code, re-run on a test environment.
    return eval(code, namespace)  # noqa: S307
