"""What a new user and CI meet: the compose file, the two commands, the pinned dependencies."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_names_the_services_each_with_a_command_or_image_and_a_health_check():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "bot", "worker"} <= set(services)
    for name, svc in services.items():
        assert "healthcheck" in svc, name
        assert "command" in svc or "image" in svc, name
    assert services["bot"]["command"] == ["mona", "run"]
    assert services["worker"]["command"] == ["mona", "worker"]
    assert services["bot"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^\s*(make \w+)\s*$", readme, flags=re.M)
    assert "make run" in commands and "make test" in commands
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.strip().splitlines()[-1] == "make test"


def test_every_dependency_is_pinned():
    lock = (ROOT / "requirements.lock").read_text().splitlines()
    pins = {re.split(r"==", line)[0].lower().replace("_", "-") for line in lock if "==" in line}
    assert all("==" in line for line in lock if line and not line.startswith("#"))
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    for req in wanted:
        name = re.split(r"[<>=\[ ]", req)[0].lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned in requirements.lock"


def test_every_environment_variable_read_is_documented():
    readme = (ROOT / "README.md").read_text()
    source = "\n".join(p.read_text() for d in ("core", "bot", "handlers", "jobs") for p in (ROOT / d).rglob("*.py"))
    # Settings.from_env reads `env.get("X")`; anything else reads `os.environ`.
    names = set(re.findall(r"\b(?:os\.environ|env)\.get\(\"([A-Z_]+)\"", source))
    names |= set(re.findall(r"os\.environ\[\"([A-Z_]+)\"\]", source))
    assert names, "no environment variable found: the pattern is wrong"
    missing = sorted(n for n in names if f"`{n}`" not in readme)
    assert missing == []
