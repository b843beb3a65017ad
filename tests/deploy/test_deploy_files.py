"""deploy/ against the code: every file parses, every setting it names exists, and the container
image, the compose file and the Kubernetes manifests keep the promises deploy/README.md makes.

Nothing is built or started: the files are read (PyYAML and the standard library), so these tests
run anywhere, without Docker or a cluster.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.core.config import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
PREFIX = "VROEGSIGNAAL_"
# Added with issue 9 beside the settings class; allowed even before it lands there.
EXTRA_SETTINGS = {"shutdown_grace_seconds"}
PROCESSES = {"ingest", "rules", "notify"}
NAME = re.compile(r"\bVROEGSIGNAAL_([A-Z][A-Z0-9_]*)\b")


def _deploy_files() -> list[Path]:
    return sorted(path for path in DEPLOY.rglob("*") if path.is_file())


def _yaml_files() -> list[Path]:
    return [path for path in _deploy_files() if path.suffix in (".yaml", ".yml")]


def _documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def _k8s_objects() -> list[dict[str, Any]]:
    return [doc for path in sorted(K8S.glob("*.yaml")) for doc in _documents(path)]


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in _k8s_objects() if doc.get("kind") == kind]


def _config_map() -> dict[str, str]:
    (config,) = [c for c in _of_kind("ConfigMap") if c["metadata"]["name"] == "vroegsignaal-config"]
    data: dict[str, str] = config["data"]
    return data


def _grace_seconds() -> float:
    return float(_config_map()[f"{PREFIX}SHUTDOWN_GRACE_SECONDS"])


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    return compose


def _seconds(duration: str) -> float:
    """Compose durations as this file writes them: `30s`, `1m30s`."""
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(number) * units[unit] for number, unit in parts)


# --- every file ---------------------------------------------------------------------------------


def test_deploy_has_the_promised_files() -> None:
    names = {path.relative_to(DEPLOY).as_posix() for path in _deploy_files()}
    for expected in (
        "Dockerfile",
        "compose.yaml",
        "env.example",
        "README.md",
        "k8s/configmap.yaml",
        "k8s/secret.example.yaml",
        "k8s/migrate-job.yaml",
        "k8s/ingest.yaml",
        "k8s/rules.yaml",
        "k8s/notify.yaml",
        "k8s/kustomization.yaml",
    ):
        assert expected in names


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_every_yaml_file_parses(path: Path) -> None:
    documents = _documents(path)
    assert documents, f"{path} holds no document"
    assert all(isinstance(doc, dict) for doc in documents)


def test_every_setting_named_in_deploy_exists_in_the_settings_class() -> None:
    fields = set(Settings.model_fields) | EXTRA_SETTINGS
    used: dict[str, set[str]] = {}
    for path in _deploy_files():
        for name in NAME.findall(path.read_text(encoding="utf-8")):
            used.setdefault(name.lower(), set()).add(path.relative_to(DEPLOY).as_posix())
    unknown = {
        f"{PREFIX}{name.upper()}": sorted(where)
        for name, where in used.items()
        if name not in fields
    }
    assert not unknown, f"not a field of services.core.config.Settings: {unknown}"
    # The production essentials are there at all (a rename would otherwise pass unnoticed).
    for essential in ("database_url", "secret_key", "bus", "kafka_bootstrap_servers"):
        assert essential in used


def _settings_values(environment: dict[str, Any]) -> dict[str, str]:
    return {
        key[len(PREFIX) :].lower(): str(value)
        for key, value in environment.items()
        if key.startswith(PREFIX) and key[len(PREFIX) :].lower() in Settings.model_fields
    }


def test_the_values_deploy_sets_are_valid_settings() -> None:
    """The ConfigMap, the compose file and env.example hold values Settings accepts."""
    sources: dict[str, dict[str, Any]] = {"k8s/configmap.yaml": dict(_config_map())}
    compose = _compose()
    for name, service in compose["services"].items():
        environment = service.get("environment") or {}
        assert isinstance(environment, dict), f"compose service {name}: environment as a mapping"
        sources[f"compose.yaml:{name}"] = environment
    example: dict[str, str] = {}
    for line in (DEPLOY / "env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            example[key.strip()] = value
    sources["env.example"] = example
    for where, environment in sources.items():
        values = _settings_values(environment)
        if where == "env.example":
            values.pop("secret_key", None)  # a placeholder on purpose: it must not start
        Settings.model_validate(values)  # raises, naming the field, on a bad value


# --- the image ----------------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    lines = [
        line
        for line in (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("#")
    ]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            found.append((instruction.upper(), arguments.strip()))
    return found


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    starts = [i for i, (instruction, _) in enumerate(instructions) if instruction == "FROM"]
    assert len(starts) >= 2, "a multi-stage build"
    return instructions[starts[-1] :]


def test_the_image_is_multi_stage_and_installs_with_the_constraints() -> None:
    instructions = _instructions()
    installs = [args for kind, args in instructions if kind == "RUN" and "pip install" in args]
    assert any("-c constraints.txt ." in args for args in installs)
    assert not any("[test" in args or "[dev" in args or " -e " in args for args in installs)
    final = _final_stage()
    assert any(kind == "COPY" and args.startswith("--from=build") for kind, args in final)
    assert "python:3.11-slim" in instructions[0][1] or any(
        kind == "ARG" and "python:3.11-slim" in args for kind, args in instructions
    )


def test_the_image_runs_as_a_non_root_user() -> None:
    users = [args for kind, args in _final_stage() if kind == "USER"]
    assert users, "USER in the final stage"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user.isdigit(), "a numeric user, so Kubernetes' runAsNonRoot can verify it"
    # The manifests run as the same user.
    for obj in [*_of_kind("Deployment"), *_of_kind("Job")]:
        context = obj["spec"]["template"]["spec"]["securityContext"]
        assert context["runAsNonRoot"] is True
        assert str(context["runAsUser"]) == user


def test_the_final_stage_has_no_build_tools_browser_or_test_extras() -> None:
    final = " ".join(args for kind, args in _final_stage() if kind == "RUN")
    for banned in ("build-essential", "gcc", "g++", "make ", "-dev ", "chromium", "playwright"):
        assert banned not in final, banned
    for needed in ("libpango-1.0-0", "libpangoft2-1.0-0", "libharfbuzz-subset0", "fonts-"):
        assert needed in final, f"WeasyPrint needs {needed}"


def test_the_image_enters_the_command_line_and_checks_its_health() -> None:
    final = _final_stage()
    (entrypoint,) = [args for kind, args in final if kind == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["vroegsignaal"]
    assert any(kind == "HEALTHCHECK" and "/healthz" in args for kind, args in final)


# --- compose ------------------------------------------------------------------------------------


def test_compose_runs_the_production_topology() -> None:
    services = _compose()["services"]
    assert {"postgres", "kafka", "migrate", "ingest", "rules", "notify"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:16")
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    assert str(kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]).lower() == "false"
    assert services["rules"]["deploy"]["replicas"] == 2
    for name in ("postgres", "kafka", "ingest", "rules", "notify"):
        assert "test" in services[name]["healthcheck"], f"{name} has a health check"


def test_compose_migrates_and_seeds_before_the_services_start() -> None:
    services = _compose()["services"]
    script = " ".join(services["migrate"]["command"])
    assert script.index("vroegsignaal migrate") < script.index("vroegsignaal seed")
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in PROCESSES:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["kafka"]["condition"] == "service_healthy"
        assert services[name]["command"][0] == name
        environment = services[name]["environment"]
        assert environment[f"{PREFIX}BUS"] == "kafka"
        grace = float(environment[f"{PREFIX}SHUTDOWN_GRACE_SECONDS"])
        assert _seconds(services[name]["stop_grace_period"]) > grace


def test_compose_takes_its_secrets_from_the_env_file() -> None:
    services = _compose()["services"]
    for name in ("migrate", *PROCESSES):
        assert services[name]["env_file"] == ".env"
    assert "${POSTGRES_PASSWORD:?" in services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    example = (DEPLOY / "env.example").read_text(encoding="utf-8")
    for secret in ("POSTGRES_PASSWORD", f"{PREFIX}SECRET_KEY"):
        (line,) = [line for line in example.splitlines() if line.startswith(f"{secret}=")]
        assert "CHANGE" in line.upper(), f"{secret} is a marked placeholder"
    assert ".env" in (DEPLOY / ".gitignore").read_text(encoding="utf-8").split()


# --- Kubernetes ---------------------------------------------------------------------------------


def _deployments() -> dict[str, dict[str, Any]]:
    found = {}
    for deployment in _of_kind("Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        found[container["args"][0]] = deployment
    return found


def test_the_manifests_are_namespace_free() -> None:
    for obj in _k8s_objects():
        assert "namespace" not in obj.get("metadata", {}), obj.get("metadata")
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert "namespace" not in kustomization
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource


def test_a_deployment_per_process_with_probes_resources_and_a_grace_period() -> None:
    deployments = _deployments()
    assert set(deployments) == PROCESSES
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        ports = {port["name"] for port in container["ports"]}
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert container[probe]["httpGet"]["port"] in ports, f"{name} {probe}"
        requests = container["resources"]["requests"]
        assert requests.get("cpu") and requests.get("memory"), name
        assert container["resources"]["limits"].get("memory"), name
        pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {})
        sleep = float(pre_stop["command"][1]) if pre_stop else 0.0
        assert pod["terminationGracePeriodSeconds"] > _grace_seconds() + sleep, name
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_processes_listen_where_their_probes_and_services_look() -> None:
    deployments = _deployments()
    for name, deployment in deployments.items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        args = container["args"]
        option = "--metrics-port" if name == "rules" else "--port"
        port = int(args[args.index(option) + 1])
        assert [p["containerPort"] for p in container["ports"]] == [port], name
    services = {s["metadata"]["name"]: s for s in _of_kind("Service")}
    for name in ("ingest", "notify"):
        service = services[f"vroegsignaal-{name}"]
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items(), name
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        named = {p["name"] for p in container["ports"]}
        assert all(p["targetPort"] in named for p in service["spec"]["ports"]), name


def test_every_deployment_has_a_disruption_budget() -> None:
    budgets = _of_kind("PodDisruptionBudget")
    for name, deployment in _deployments().items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        matching = [
            b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(matching) == 1, f"{name}: {len(matching)} budgets"


def test_rules_replicas_stay_within_the_partition_count() -> None:
    partitions = int(_config_map()[f"{PREFIX}KAFKA_PARTITIONS"])
    assert 1 <= _deployments()["rules"]["spec"]["replicas"] <= partitions


def test_the_migrate_job_migrates_then_seeds() -> None:
    (job,) = _of_kind("Job")
    pod = job["spec"]["template"]["spec"]
    assert [c["args"] for c in pod["initContainers"]] == [["migrate"]]
    assert [c["args"] for c in pod["containers"]] == [["seed"]]
    assert pod["restartPolicy"] == "Never"


def test_secrets_come_from_the_secret_and_the_example_holds_placeholders() -> None:
    (example,) = _of_kind("Secret")
    assert example["metadata"]["name"] == "vroegsignaal-secrets"
    placeholders: dict[str, str] = example["stringData"]
    assert all("CHANGE-ME" in value for value in placeholders.values())
    assert not any(
        key.startswith(PREFIX) and key[len(PREFIX) :] in {"DATABASE_URL", "SECRET_KEY", "SMTP_URL"}
        for key in _config_map()
    ), "secrets are not in the ConfigMap"
    secret_settings = set()
    for obj in [*_of_kind("Deployment"), *_of_kind("Job")]:
        pod = obj["spec"]["template"]["spec"]
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            assert container["envFrom"] == [{"configMapRef": {"name": "vroegsignaal-config"}}]
            for variable in container.get("env", []):
                reference = variable["valueFrom"]["secretKeyRef"]
                assert reference["name"] == "vroegsignaal-secrets"
                assert reference["key"] in placeholders
                secret_settings.add(variable["name"])
    assert secret_settings == {f"{PREFIX}DATABASE_URL", f"{PREFIX}SECRET_KEY", f"{PREFIX}SMTP_URL"}


def test_the_compose_and_kubernetes_commands_agree() -> None:
    """The same process, with the same options, wherever it runs."""
    services = _compose()["services"]
    for name, deployment in _deployments().items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"] == services[name]["command"], name
    assert shlex.split(services["migrate"]["command"][0]) == [
        "vroegsignaal",
        "migrate",
        "&&",
        "vroegsignaal",
        "seed",
    ]


def test_the_image_ships_the_compiled_rules_evaluation() -> None:
    """The build stage compiles the evaluation before it installs the package (the .so files are
    package data); the compiler stays behind in the build stage."""
    instructions = _instructions()
    final_from = max(i for i, (kind, _) in enumerate(instructions) if kind == "FROM")
    build = " ".join(args for kind, args in instructions[:final_from] if kind == "RUN")
    assert "gcc" in build
    compiled_at = build.index('main(["build"])')
    assert compiled_at < build.index("pip install -c constraints.txt .")
    assert "pip uninstall --yes mypy" in build
