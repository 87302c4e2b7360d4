"""services/ checked offline (no container runtime or cluster here): every YAML parses; the
Kubernetes manifests pass the Kubernetes OpenAPI schemas (kubernetes-validate, strict); the
compose files pass the Compose specification (compose-spec's strict parser); the Dockerfile
passes hadolint; and every verb, flag, setting, port, probe path and mount they name exists."""

from __future__ import annotations

import copy
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer.main
import yaml
from compose_spec import PyCompose
from typer.testing import CliRunner

from graphfraud.cli import app as cli_app
from graphfraud.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
K8S = SERVICES / "k8s"
COMPOSE = SERVICES / "compose"
DOCKERFILE = SERVICES / "docker" / "Dockerfile"
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")  # the oldest we claim and the validator's newest
SECRET_SETTINGS = re.compile(r"PASSWORD|API_KEYS|SIGNING_KEY")
HADOLINT = Path(sys.executable).with_name("hadolint")


def _docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _manifests() -> list[tuple[Path, dict[str, Any]]]:
    return [
        (path, doc)
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in _docs(path)
    ]


def _of_kind(kind: str) -> dict[str, Any]:
    found = [doc for _, doc in _manifests() if doc["kind"] == kind]
    assert len(found) == 1, kind
    return found[0]


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"]["spec"])


def _compose(name: str = "compose.yaml") -> dict[str, Any]:
    return dict(yaml.safe_load((COMPOSE / name).read_text()))


# ---- every file parses and passes its schema ---------------------------------------------------
def test_every_yaml_file_under_services_parses() -> None:
    files = sorted([*SERVICES.rglob("*.yaml"), *SERVICES.rglob("*.yml")])
    assert len(files) >= 7
    for path in files:
        assert _docs(path), path


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_manifests_pass_the_schemas_strictly(version: str) -> None:
    kinds = set()
    for _path, doc in _manifests():
        kubernetes_validate.validate(doc, version, strict=True)
        kinds.add(doc["kind"])
    assert {"Deployment", "Service", "CronJob", "ConfigMap", "PersistentVolumeClaim"} <= kinds


def test_the_schema_check_catches_a_mistake() -> None:
    """The validator is live: a misspelt field and a wrong type are both refused."""
    deployment = _of_kind("Deployment")
    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, KUBERNETES_VERSIONS[-1], strict=True)
    wrong = copy.deepcopy(deployment)
    wrong["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, KUBERNETES_VERSIONS[-1], strict=True)


def test_kustomization_lists_every_manifest() -> None:
    listed = set(_docs(K8S / "kustomization.yaml")[0]["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


def test_compose_files_pass_the_compose_specification() -> None:
    base = _compose()
    assert PyCompose.from_json(json.dumps(base)).service_names() == ["neo4j", "batch", "api"]
    gpu = _compose("compose.gpu.yaml")
    PyCompose.from_json(json.dumps(gpu))
    merged = copy.deepcopy(base)
    for name, override in gpu["services"].items():
        merged["services"][name] = _deep_merge(merged["services"][name], override)
    PyCompose.from_json(json.dumps(merged))
    broken = copy.deepcopy(base)
    broken["services"]["api"]["depends_on"]["batch"]["condition"] = "service_finished"
    with pytest.raises(ValueError, match="service_finished"):
        PyCompose.from_json(json.dumps(broken))


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        old = out.get(key)
        out[key] = (
            _deep_merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
        )
    return out


def test_dockerfile_passes_hadolint() -> None:
    proc = subprocess.run(
        [str(HADOLINT), "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---- the images: small, non-root, checked, CPU and CUDA from one file ---------------------------
def _stages() -> dict[str, list[str]]:
    stages: dict[str, list[str]] = {}
    current = ""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if match := re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE):
            current = match.group(1)
            stages[current] = [line]
        elif current and line and not line.startswith("#"):
            stages[current].append(line)
    return stages


def test_images_are_multi_stage_slim_non_root_with_health_checks() -> None:
    stages = _stages()
    assert list(stages) == ["build", "runtime", "api", "batch"]
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in DOCKERFILE.read_text()
    runtime = "\n".join(stages["runtime"])
    assert "COPY --from=build /opt/graphfraud /opt/graphfraud" in runtime
    assert "USER 10001:10001" in runtime  # every target inherits it
    for target in ("api", "batch"):
        assert stages[target][0].startswith("FROM runtime AS"), target
        assert any(line.startswith("HEALTHCHECK") for line in stages[target]), target
        assert not any(line.startswith("USER") for line in stages[target]), target
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
                assert not (ROOT / ".dockerignore").read_text().count(f"\n{source}\n")


def test_torch_pin_in_the_image_is_the_package_pin() -> None:
    pinned = re.search(r'"torch==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert pinned is not None
    assert f"pip install torch=={pinned.group(1)}" in DOCKERFILE.read_text()


# ---- what they reference exists ----------------------------------------------------------------
def _graphfraud_invocations() -> Iterator[tuple[str, list[str]]]:
    """Every `graphfraud …` command line in the Dockerfile, compose and the manifests."""
    stages = _stages()
    for target in ("api", "batch"):
        cmd = next(line for line in stages[target] if line.startswith("CMD"))
        yield f"Dockerfile:{target}", json.loads(cmd[3:])
    for name, service in _compose()["services"].items():
        yield from _split_commands(f"compose:{name}", service.get("command"))
    for path, doc in _manifests():
        if doc["kind"] in ("Deployment", "CronJob"):
            for container in _pod(doc)["containers"]:
                if "command" not in container:  # the image's entrypoint: graphfraud
                    yield path.name, list(container["args"])
                else:  # a shell script
                    yield from _split_commands(path.name, container["args"])


def _split_commands(where: str, command: Any) -> Iterator[tuple[str, list[str]]]:
    if command is None:
        return
    if isinstance(command, list) and command and command[0] in ("serve", "run"):
        yield where, list(command)
        return
    script = command[-1] if isinstance(command, list) else command
    for part in re.split(r"&&|;", script):
        words = shlex.split(part)
        if words and words[0] == "graphfraud":
            yield where, words[1:]


def test_every_graphfraud_command_parses_against_the_cli() -> None:
    """Each verb exists, answers --help, and takes the flags given (click parses them: an unknown
    flag or a bad value fails here, not at 01:30 in the cluster)."""
    group = typer.main.get_command(cli_app)
    seen: set[str] = set()
    runner = CliRunner()
    for where, argv in _graphfraud_invocations():
        verb, args = argv[0], argv[1:]
        command = group.get_command(group.make_context("graphfraud", [verb]), verb)  # type: ignore[attr-defined]
        assert command is not None, f"{where}: no verb {verb!r}"
        if args != ["--help"]:
            command.make_context(verb, list(args))
        seen.add(verb)
        result = runner.invoke(cli_app, [verb, "--help"])
        assert result.exit_code == 0, f"{where}: {verb} --help"
    assert {"serve", "run", "synth"} <= seen
    batch_check = next(line for line in _stages()["batch"] if line.startswith("HEALTHCHECK"))
    argv = json.loads(batch_check.split("CMD", 1)[1])
    assert argv[0] == "graphfraud"
    assert runner.invoke(cli_app, argv[1:]).exit_code == 0


def _setting_exists(name: str, settings: type[Settings]) -> bool:
    body = name.removeprefix("GRAPHFRAUD_").lower()
    group, _, field = body.partition("__")
    if not field:
        return group in settings.model_fields
    annotation = settings.model_fields[group].annotation if group in settings.model_fields else None
    fields = getattr(annotation, "model_fields", {})
    return field in fields


def _cli_envvars() -> set[str]:
    """Variables the CLI's own options read (e.g. GRAPHFRAUD_SERVE_RUN), beyond the settings."""
    found: set[str] = set()

    def walk(command: Any) -> None:
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            found.update([envvar] if isinstance(envvar, str) else list(envvar or ()))
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(cli_app))
    return found


def test_every_environment_variable_is_a_real_setting() -> None:
    """In the files of this directory's images, compose and manifests (the schedules under
    services/airflow and services/cron carry their own checks)."""
    files = [DOCKERFILE, *COMPOSE.glob("*.yaml"), *K8S.glob("*.yaml")]
    text = "\n".join(p.read_text() for p in files)
    names = set(re.findall(r"\bGRAPHFRAUD_[A-Z0-9_]+", text))
    assert len(names) >= 10
    cli = _cli_envvars()
    unknown = sorted(n for n in names if not _setting_exists(n, Settings) and n not in cli)
    assert unknown == []
    assert "GRAPHFRAUD_SERVE_RUN" in cli  # the walk sees the CLI's own variables
    assert not _setting_exists("GRAPHFRAUD_SERVICE__PROT", Settings)  # a typo is caught
    assert not _setting_exists("GRAPHFRAUD_SERVIC__PORT", Settings)


def test_secrets_come_from_the_cluster_and_the_shell_never_from_files() -> None:
    assert not [doc for _, doc in _manifests() if doc["kind"] == "Secret"]
    checked = 0
    for _, doc in _manifests():
        if doc["kind"] == "ConfigMap":
            assert not [k for k in doc["data"] if SECRET_SETTINGS.search(k)]
        if doc["kind"] not in ("Deployment", "CronJob"):
            continue
        for container in _pod(doc)["containers"]:
            for env in container.get("env", []):
                if SECRET_SETTINGS.search(env["name"]):
                    assert "value" not in env, env["name"]
                    assert env["valueFrom"]["secretKeyRef"]["name"] == "graphfraud-secrets"
                    checked += 1
    assert checked >= 4
    for service in _compose()["services"].values():
        for name, value in (service.get("environment") or {}).items():
            if SECRET_SETTINGS.search(name) or name == "NEO4J_AUTH":
                assert re.search(r"\$\{[A-Z0-9_]+:\?", str(value)), name  # required from the shell
    assert "PASSWORD" not in DOCKERFILE.read_text().replace("GRAPHFRAUD_GRAPH__PASSWORD", "")


def test_api_probes_ports_and_paths_match_the_service(tmp_path: Path) -> None:
    from graphfraud.service.app import create_app

    settings = load_settings()
    settings.service.audit_log = tmp_path / "audit.log"
    settings.service.runs_root = tmp_path
    routes = set(create_app(settings).openapi()["paths"])
    deployment = _of_kind("Deployment")
    container = _pod(deployment)["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {
        container[p]["httpGet"]["path"] for p in ("readinessProbe", "livenessProbe", "startupProbe")
    } <= routes
    assert deployment["spec"]["replicas"] >= 2
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]
    port = container["ports"][0]
    args = container["args"]
    assert int(args[args.index("--port") + 1]) == port["containerPort"]
    service = _of_kind("Service")
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    assert f"EXPOSE {port['containerPort']}" in DOCKERFILE.read_text()
    checks = [line for line in _stages()["api"] if line.startswith("HEALTHCHECK")]
    probed = re.findall(r"127\.0\.0\.1:%s(/\w+)", checks[0])
    assert probed == ["/healthz"]
    assert set(probed) <= routes
    api = _compose()["services"]["api"]
    assert api["ports"] == [f"127.0.0.1:{port['containerPort']}:{port['containerPort']}"]
    assert "/readyz" in " ".join(api["healthcheck"]["test"])


def test_the_nightly_job_asks_for_a_gpu_and_cannot_overlap() -> None:
    cron = _of_kind("CronJob")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    container = _pod(cron)["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["image"].endswith(":cuda")
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GRAPHFRAUD_MODEL__DEVICE"] == "auto"


def _mounts_cover(paths: list[str], mounts: list[str]) -> list[str]:
    return [
        p for p in paths if not any(p == m or p.startswith(m.rstrip("/") + "/") for m in mounts)
    ]


def test_every_data_path_a_command_names_is_mounted() -> None:
    for path, doc in _manifests():
        if doc["kind"] not in ("Deployment", "CronJob"):
            continue
        for container in _pod(doc)["containers"]:
            words = " ".join(container.get("args", []))
            used = re.findall(r"/data/[\w./-]+", words)
            mounts = [m["mountPath"] for m in container["volumeMounts"]]
            assert used
            assert _mounts_cover(used, mounts) == [], path.name
    for name, service in _compose()["services"].items():
        words = json.dumps(service.get("command", ""))
        used = re.findall(r"/data/[\w.-]+(?:/[\w.-]+)*", words)
        mounts = [v.split(":")[1] for v in service.get("volumes", [])]
        assert _mounts_cover(used, mounts) == [], name
