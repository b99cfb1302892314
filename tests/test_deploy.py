"""The deployment files (deploy/, Dockerfile, docs/city-mode.md) stay true to the code they start.

Every unit and manifest parses, names only real settings and real `safecity` commands (with options
the command accepts), probes `/healthz`, and the kustomization lists every manifest. Where the
machine has them, `systemd-analyze verify`, `nats-server -t` and `kubectl kustomize` check further.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from safecity.cli import app
from safecity.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
SYSTEMD = DEPLOY / "systemd"
KUBERNETES = DEPLOY / "kubernetes"
CITY_MODE = REPO / "docs" / "city-mode.md"
UNITS = sorted(SYSTEMD.glob("*.service"))
MANIFESTS = sorted(p for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")
# Read by settings.py itself (the YAML file), not a field of Settings.
NOT_FIELDS = {"SAFECITY_CONFIG"}
KUBE_SETTINGS = "the ConfigMap and Secret safecity"
# What a unit's specifiers stand for when a command line is checked.
SPECIFIERS = {"%i": "8000", "%H": "worker-1", "%%": "%"}

# Keys our units may use, per section: a key in the wrong section is ignored by systemd with a
# warning only, so the service would start without it.
UNIT_KEYS = {
    "Unit": {
        "Description",
        "Documentation",
        "Wants",
        "Requires",
        "After",
        "Before",
        "BindsTo",
        "PartOf",
        "RequiresMountsFor",
        "StartLimitIntervalSec",
        "StartLimitBurst",
        "ConditionPathExists",
    },
    "Service": {
        "Type",
        "RemainAfterExit",
        "User",
        "Group",
        "Environment",
        "EnvironmentFile",
        "ExecStartPre",
        "ExecStart",
        "Restart",
        "RestartSec",
        "KillSignal",
        "KillMode",
        "TimeoutStartSec",
        "TimeoutStopSec",
        "LimitNOFILE",
        "UMask",
        "NoNewPrivileges",
        "ProtectSystem",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectControlGroups",
        "RestrictSUIDSGID",
        "RestrictNamespaces",
        "RestrictRealtime",
        "LockPersonality",
        "RestrictAddressFamilies",
        "ReadWritePaths",
        "StateDirectory",
    },
    "Install": {"WantedBy", "RequiredBy", "Alias"},
}


def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Returns a systemd unit's sections as lists of (key, value); repeated keys are kept in order."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    pending = ""
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            assert line.endswith("]"), f"{path.name}:{number}: bad section header {line!r}"
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"{path.name}:{number}: a setting before any section"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}:{number}: not KEY=VALUE: {line!r}"
        current.append((key.strip(), value.strip()))
    return sections


def unit_value(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> str | None:
    """Returns the last value of a key in a section (what systemd uses for a single-valued key)."""
    values = [v for k, v in unit.get(section, []) if k == key]
    return values[-1] if values else None


def manifests() -> Iterator[tuple[Path, dict[str, Any]]]:
    """Yields every Kubernetes object of every manifest with the file it is in."""
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                yield path, doc


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    """Returns the pod spec of a workload (Deployment, StatefulSet, Job), else None."""
    template = doc.get("spec", {}).get("template")
    return template["spec"] if template else None


def safecity_containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Returns the containers (init ones too) of a workload that run the SafeCity image."""
    spec = pod_spec(doc) or {}
    containers = spec.get("initContainers", []) + spec.get("containers", [])
    return [c for c in containers if c["image"].split(":")[0].rsplit("/", 1)[-1] == "safecity"]


def workload(name: str) -> dict[str, Any]:
    """Returns the Deployment or StatefulSet called `name`."""
    for _, doc in manifests():
        if doc["kind"] in {"Deployment", "StatefulSet"} and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no workload {name} in deploy/kubernetes")


def check_command(argv: list[str], where: str) -> None:
    """Fails unless `safecity <argv>` names a command and its arguments parse (nothing is run)."""
    shown = f"{where}: `safecity {' '.join(argv)}`"
    # Typer carries its own copy of Click: use the classes it built rather than importing click.
    command: Any = typer.main.get_command(app)
    ctx = command.context_class(command, info_name="safecity")
    args = list(argv)
    while hasattr(command, "list_commands") and args and not args[0].startswith("-"):
        sub = command.get_command(ctx, args[0])
        assert sub is not None, f"{shown}: no command {args[0]!r}"
        command, args = sub, args[1:]
        ctx = command.context_class(command, info_name=command.name, parent=ctx)
    assert not hasattr(command, "list_commands"), f"{shown}: names a group, not a command"
    try:
        command.make_context(command.name, args, parent=ctx.parent)
    except Exception as exc:
        if not hasattr(exc, "format_message"):
            raise
        raise AssertionError(f"{shown}: {exc.format_message()}") from exc


def shell_commands(text: str) -> Iterator[list[str]]:
    """Yields the simple commands of the shell code blocks of a Markdown text, as argument lists."""
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            try:
                tokens = shlex.split(line, comments=True)
            except ValueError:
                continue  # a quoted script spread over lines (kubectl run … sh -c '…')
            command: list[str] = []
            for token in [*tokens, ";"]:
                if token in {";", "&&", "||", "|"}:
                    if command:
                        yield command
                    command = []
                else:
                    command.append(token)


def safecity_invocations(command: list[str]) -> Iterator[list[str]]:
    """Yields the arguments of every `safecity …` (or the docs' `sc …` helper) in a shell command."""
    for index, token in enumerate(command):
        at_start = index == 0 or command[index - 1] in {"--", "exec"}
        is_safecity = token == "safecity" or token.endswith("/bin/safecity") or (index == 0 and token == "sc")
        if at_start and is_safecity and index + 1 < len(command) and command[index + 1] != "()":
            yield command[index + 1 :]


def test_every_unit_parses_with_known_keys_in_their_sections() -> None:
    assert {p.name for p in UNITS} >= {
        "safecity-migrate.service",
        "safecity-serve@.service",
        "safecity-worker.service",
        "safecity-notice-worker.service",
    }
    for path in UNITS:
        unit = parse_unit(path)
        assert set(unit) <= set(UNIT_KEYS), f"{path.name}: unknown sections {set(unit) - set(UNIT_KEYS)}"
        for section, entries in unit.items():
            unknown = {k for k, _ in entries} - UNIT_KEYS[section]
            assert not unknown, f"{path.name}: [{section}] does not take {sorted(unknown)}"
        assert unit_value(unit, "Service", "ExecStart"), f"{path.name}: no ExecStart"


def test_units_run_as_a_hardened_user_and_stop_with_time_to_hand_back() -> None:
    for path in UNITS:
        unit = parse_unit(path)
        assert unit_value(unit, "Service", "User") == "safecity", path.name
        assert unit_value(unit, "Service", "NoNewPrivileges") == "yes", path.name
        assert unit_value(unit, "Service", "ProtectSystem") == "strict", path.name
        assert unit_value(unit, "Service", "ReadWritePaths") == "/var/lib/safecity", path.name
        assert unit_value(unit, "Service", "EnvironmentFile") == "/etc/safecity/safecity.env", path.name
    migrate = parse_unit(SYSTEMD / "safecity-migrate.service")
    assert unit_value(migrate, "Service", "Type") == "oneshot"
    for name, at_least in [
        ("safecity-serve@.service", 30),
        ("safecity-worker.service", 60),
        ("safecity-notice-worker.service", 30),
    ]:
        unit = parse_unit(SYSTEMD / name)
        assert unit_value(unit, "Service", "Restart") == "always", name
        assert unit_value(unit, "Service", "KillSignal") == "SIGTERM", name
        assert int(unit_value(unit, "Service", "TimeoutStopSec") or 0) >= at_least, name
        assert int(unit_value(unit, "Service", "LimitNOFILE") or 0) >= 65536, name
        assert "safecity-migrate.service" in (unit_value(unit, "Unit", "After") or ""), name


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    binary = Path(shutil.which("safecity") or REPO / ".venv" / "bin" / "safecity")
    names = []
    for path in UNITS:
        name = path.name.replace("@.", "@8000.")
        text = path.read_text().replace("/opt/safecity/bin/safecity", str(binary))
        (tmp_path / name).write_text(text)
        names.append(str(tmp_path / name))
    result = subprocess.run(
        [analyze, "verify", "--man=no", *names], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_every_manifest_parses_and_the_kustomization_lists_each_one() -> None:
    objects = list(manifests())
    assert objects
    for path, doc in objects:
        assert {"apiVersion", "kind", "metadata"} <= set(doc), f"{path.name}: not a Kubernetes object"
        assert doc["metadata"].get("name"), f"{path.name}: an object without a name"
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    assert set(listed) == {p.name for p in MANIFESTS}


def test_the_cluster_has_three_nats_a_postgres_replica_serves_workers_and_migration() -> None:
    kinds = {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in manifests()}
    nats = kinds[("StatefulSet", "nats")]
    assert nats["spec"]["replicas"] == 3
    assert kinds[("Service", "nats-headless")]["spec"]["clusterIP"] == "None"
    assert ("Service", "nats") in kinds and ("PodDisruptionBudget", "nats") in kinds
    assert ("StatefulSet", "postgres-primary") in kinds and ("StatefulSet", "postgres-replica") in kinds
    assert ("Job", "safecity-migrate") in kinds
    shared = kinds[("PersistentVolumeClaim", "safecity-data")]
    assert shared["spec"]["accessModes"] == ["ReadWriteMany"]
    config = kinds[("ConfigMap", "nats-config")]["data"]["nats.conf"]
    for ordinal in range(3):
        assert f"nats-{ordinal}.nats-headless:6222" in config


def test_every_safecity_variable_named_is_a_real_setting() -> None:
    fields = {f"SAFECITY_{name.upper()}" for name in Settings.model_fields}
    sources = [*DEPLOY.rglob("*"), REPO / "Dockerfile", CITY_MODE]
    for path in (p for p in sources if p.is_file()):
        named = set(re.findall(r"\bSAFECITY_[A-Z0-9_]+\b", path.read_text()))
        unknown = named - fields - NOT_FIELDS
        assert not unknown, f"{path.relative_to(REPO)} names settings that do not exist: {sorted(unknown)}"


def example_settings() -> list[tuple[str, dict[str, str]]]:
    """Returns the example settings of each file that sets them (environment file, ConfigMap, Secret)."""
    examples = []
    env: dict[str, str] = {}
    for line in (SYSTEMD / "safecity.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and value.strip(), f"safecity.env.example: {line!r} must be KEY=VALUE, not empty"
            env[key.strip()] = value.strip()
    examples.append(("safecity.env.example", env))
    kube: dict[str, str] = {}
    for _, doc in manifests():
        if doc["kind"] in {"ConfigMap", "Secret"} and doc["metadata"]["name"] == "safecity":
            kube.update(doc.get("data") or doc.get("stringData") or {})
    examples.append((KUBE_SETTINGS, kube))
    return examples


def test_the_example_settings_are_valid_values_for_the_city_mode() -> None:
    for where, values in example_settings():
        assert all(k.startswith("SAFECITY_") for k in values), where
        settings = Settings(**{k.removeprefix("SAFECITY_").lower(): v for k, v in values.items()})
        assert settings.bus == "nats", where
        assert (settings.database_url or "").startswith("postgresql+psycopg://"), where
        assert len(settings.nats_url.split(",")) == 3, f"{where}: name all three NATS servers"
        assert str(settings.data_dir) == "/var/lib/safecity", where
        assert settings.handled_keys_days > settings.nats_max_age_days, where
        assert settings.worker_metrics_port, f"{where}: workers serve their metrics"


def test_notices_kept_out_of_serve_are_sent_by_a_notice_worker() -> None:
    for where, values in example_settings():
        assert values["SAFECITY_NOTICES_IN_SERVE"] == "false", where
    unit = parse_unit(SYSTEMD / "safecity-notice-worker.service")
    assert (unit_value(unit, "Service", "ExecStart") or "").endswith("safecity challans notice-worker")
    (container,) = safecity_containers(workload("safecity-notices"))
    assert container["args"] == ["challans", "notice-worker"]


def test_every_safecity_command_in_deploy_and_docs_exists_with_its_options() -> None:
    checked = 0
    for path in UNITS:
        for section_entries in parse_unit(path).values():
            for key, value in section_entries:
                if key.startswith("ExecStart"):
                    for name, stands_for in SPECIFIERS.items():
                        value = value.replace(name, stands_for)
                    argv = shlex.split(value)
                    if argv[0].endswith("/safecity"):
                        check_command(argv[1:], path.name)
                        checked += 1
    for path, doc in manifests():
        for container in safecity_containers(doc):
            if "command" not in container:  # the image's entry point is `safecity`
                check_command(container["args"], f"{path.name} {container['name']}")
                checked += 1
    for command in shell_commands(CITY_MODE.read_text()):
        for argv in safecity_invocations(command):
            check_command(argv, "docs/city-mode.md")
            checked += 1
    assert checked >= 15


def test_serve_listens_where_its_probes_look_and_probes_healthz() -> None:
    serve = workload("safecity-serve")
    (container,) = safecity_containers(serve)
    args = container["args"]
    assert args[:2] == ["serve", "--no-workers"]
    port = int(args[args.index("--port") + 1])
    assert container["ports"][0]["containerPort"] == port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz", probe
        assert container[probe]["httpGet"]["port"] in {port, container["ports"][0]["name"]}, probe


def test_every_probe_of_a_safecity_container_is_healthz_and_workers_have_time_to_hand_back() -> None:
    for path, doc in manifests():
        for container in safecity_containers(doc):
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if probe in container:
                    assert container[probe]["httpGet"]["path"] == "/healthz", f"{path.name} {probe}"
    worker = workload("safecity-worker")
    spec = pod_spec(worker) or {}
    assert spec["terminationGracePeriodSeconds"] >= 60
    (main,) = [c for c in spec["containers"] if c["name"] == "worker"]
    assert main["args"] == ["worker"]
    metrics_port = int(dict(example_settings())[KUBE_SETTINGS]["SAFECITY_WORKER_METRICS_PORT"])
    assert {"name": "metrics", "containerPort": metrics_port} in main["ports"]
    assert worker["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(metrics_port)
    mounts = {m["mountPath"]: m for m in main["volumeMounts"]}
    # The spool stays the worker's own; media and recordings come from the shared volume.
    assert mounts["/var/lib/safecity"]["name"] != "shared"
    assert mounts["/var/lib/safecity/media"]["subPath"] == "media"
    assert mounts["/var/lib/safecity/recordings"]["subPath"] == "recordings"


def test_nats_configurations_pass_nats_server_t(tmp_path: Path) -> None:
    server = shutil.which("nats-server")
    if server is None:
        pytest.skip("nats-server is not installed")
    (config,) = [d for _, d in manifests() if d["metadata"]["name"] == "nats-config"]
    kube = tmp_path / "nats.conf"
    kube.write_text(config["data"]["nats.conf"])
    for path in [SYSTEMD / "nats-server.conf", kube]:
        result = subprocess.run(
            [server, "-t", "-c", str(path)],
            capture_output=True,
            text=True,
            timeout=10,
            env={"POD_NAME": "nats-0", "NATS_PASSWORD": "example"},
        )
        assert result.returncode == 0, f"{path.name}: {result.stderr}"


def test_the_kustomization_builds() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    result = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    built = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert {d["metadata"].get("namespace") for d in built if d["kind"] != "Namespace"} == {"safecity"}
