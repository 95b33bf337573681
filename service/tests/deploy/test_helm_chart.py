"""The Helm chart (``deploy/helm/signing-service``): lint it, render it, validate what it renders.

No cluster is needed: ``helm lint`` and ``helm template`` run offline, with the helm binary that
``scripts/install-helm`` puts in ``.tools/bin`` (installed once; a missing helm fails the module
rather than skipping it, so a broken chart cannot pass unnoticed). For each set of values an
admin is likely to use, the tests check:

- the chart lints without errors or warnings, and every rendered manifest is valid against the
  schemas of Kubernetes 1.30 (``kubernetes-validate``, strict: unknown fields are errors, which
  catches a misspelt or misplaced field that Kubernetes would silently drop). The
  ServiceMonitor is a custom resource without a schema there: its fields are asserted instead;
- what keeps the service safe: the secrets reach the pods only as files of a Secret (never in
  an env value, a ConfigMap or anywhere else in the output), every pod (the migrations Job's
  too) runs as the non-root user with a read-only root filesystem and no privileges, and values
  that would deploy a broken or unsafe service fail the render with a message saying why;
- what keeps it running: probes on /healthz and /readyz in the scheme the pods serve, the
  migrations Job as a hook that finds its Secret already made, HTTP behind an Ingress with
  forwarded headers trusted from the configured proxies only, the PodDisruptionBudget and the
  ServiceMonitor when (and only when) they make sense.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "deploy" / "helm" / "signing-service"
KUBERNETES_VERSION = "1.30.0"
RELEASE = "signing"
FULLNAME = "signing-signing-service"
SECRETS_DIR = "/run/secrets/signing-service"

# Values that must never be readable in the output: each is looked for verbatim and base64-encoded.
MASTER_KEY = base64.b64encode(bytes(range(100, 132))).decode()
DATABASE_PASSWORD = "database-password-for-helm-tests"
DATABASE_URL = f"postgres://signing:{DATABASE_PASSWORD}@db.example:5432/signing"
METRICS_TOKEN = "metrics-token-for-helm-tests"
SECRET_VALUES = (MASTER_KEY, DATABASE_URL, DATABASE_PASSWORD, METRICS_TOKEN)

SECRETS = {"masterKey": MASTER_KEY, "databaseUrl": DATABASE_URL}
INGRESS = {
    "enabled": True,
    "className": "nginx",
    "host": "signing.example.com",
    "tls": {"secretName": "signing-tls"},
    "trustedProxies": "10.244.0.0/16",
    "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "16m"},
}
METRICS = {"enabled": True, "serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}

VALUE_SETS = {
    "defaults": {"secrets": SECRETS},
    "ingress": {"secrets": SECRETS, "ingress": INGRESS},
    "existing-secret": {
        "existingSecret": "admin-made-secret",
        "existingSecretKeys": {"masterKey": "the-master-key"},
    },
    "replicas-3": {"secrets": SECRETS, "replicas": 3},
    "replicas-1": {"secrets": SECRETS, "replicas": 1},
    "metrics": {"secrets": {**SECRETS, "metricsToken": METRICS_TOKEN}, "metrics": METRICS},
    "metrics-behind-ingress": {
        "secrets": {**SECRETS, "metricsToken": METRICS_TOKEN},
        "metrics": METRICS,
        "ingress": INGRESS,
    },
    "own-certificate": {
        "secrets": {**SECRETS, "metricsToken": METRICS_TOKEN},
        "metrics": METRICS,
        "tls": {"existingSecret": "signing-tls"},
    },
}
CHART_MADE_SECRET = [name for name, values in VALUE_SETS.items() if "secrets" in values]


@pytest.fixture(scope="module")
def helm() -> Path:
    """The pinned helm binary, installed by ``scripts/install-helm`` if it is not yet."""
    installed = subprocess.run(
        [REPO / "scripts" / "install-helm"], capture_output=True, text=True, check=False
    )
    if installed.returncode != 0:
        pytest.fail(f"scripts/install-helm failed:\n{installed.stderr}")
    return Path(installed.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def run_helm(helm, tmp_path_factory):
    """Run ``helm lint`` or ``helm template`` on a chart with the given values."""
    scratch = tmp_path_factory.mktemp("helm")
    # helm's caches and settings go to scratch, not to the home of whoever runs the tests.
    env = os.environ | {
        name: str(scratch / name)
        for name in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME")
    }
    values_files = (scratch / f"values-{number}.yaml" for number in itertools.count())

    def run(command: str, values: dict, chart: Path = CHART) -> subprocess.CompletedProcess:
        values_file = next(values_files)
        values_file.write_text(yaml.safe_dump(values))
        # lint --strict: a warning fails as an error does.
        extra = [RELEASE] if command == "template" else ["--strict"]
        arguments = [command, *extra, chart, "--kube-version", KUBERNETES_VERSION]
        return subprocess.run(
            [helm, *arguments, "--values", values_file],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )

    return run


class Rendered:
    """The output of ``helm template``: its text and its manifests."""

    def __init__(self, text: str):
        self.text = text
        self.manifests = [doc for doc in yaml.safe_load_all(text) if doc]

    def all(self, kind: str) -> list[dict]:
        return [doc for doc in self.manifests if doc["kind"] == kind]

    def one(self, kind: str) -> dict:
        (found,) = self.all(kind)
        return found

    def pod_specs(self) -> list[dict]:
        return [doc["spec"]["template"]["spec"] for doc in self.all("Deployment") + self.all("Job")]

    def server(self) -> dict:
        """The service's container in the Deployment."""
        (container,) = self.one("Deployment")["spec"]["template"]["spec"]["containers"]
        return container


@pytest.fixture(scope="module")
def render(run_helm):
    """``helm template`` with one of VALUE_SETS (or any values), rendered once per module."""
    cache: dict[str, Rendered] = {}

    def rendered(name: str, values: dict | None = None) -> Rendered:
        if name not in cache:
            result = run_helm("template", VALUE_SETS[name] if values is None else values)
            assert result.returncode == 0, result.stderr
            cache[name] = Rendered(result.stdout)
        return cache[name]

    return rendered


def env_of(container: dict) -> dict[str, dict]:
    return {entry["name"]: entry for entry in container["env"]}


def env_values(container: dict) -> dict[str, str]:
    return {name: entry["value"] for name, entry in env_of(container).items() if "value" in entry}


# --- lint and schemas ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", VALUE_SETS)
def test_the_chart_lints_without_errors_or_warnings(run_helm, name):
    result = run_helm("lint", VALUE_SETS[name])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[ERROR]" not in result.stdout
    assert "[WARNING]" not in result.stdout


@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_manifest_is_valid_for_kubernetes(render, name):
    for manifest in render(name).manifests:
        if manifest["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a custom resource: no schema here; see the ServiceMonitor tests
        try:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            invalid = error
        else:
            continue
        # Outside the except: the error's own report repeats the whole schema, pages of it.
        where = ".".join(str(part) for part in invalid.absolute_path)
        pytest.fail(f"{manifest['kind']} {where}: {invalid.message}")


# --- secrets -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VALUE_SETS)
def test_no_secret_is_readable_outside_the_secrets_data(render, name):
    rendered = render(name)
    for secret in SECRET_VALUES:
        assert secret not in rendered.text
    encoded = [base64.b64encode(value.encode()).decode() for value in SECRET_VALUES]
    for manifest in rendered.manifests:
        if manifest["kind"] != "Secret":
            dumped = json.dumps(manifest)
            assert not [value for value in encoded if value in dumped], manifest["kind"]
    for pod in rendered.pod_specs():
        for container in pod["containers"]:
            names = set(env_of(container))
            # Only the _FILE forms: a secret in an env value shows in `kubectl describe`.
            assert not names & {"DATABASE_URL", "SIGNING_SERVICE_DATABASE_URL"}
            assert not names & {"SIGNING_SERVICE_MASTER_KEY", "SIGNING_SERVICE_METRICS_TOKEN"}
            assert all(
                "secretKeyRef" not in entry.get("valueFrom", {}) for entry in container["env"]
            )


@pytest.mark.parametrize("name", CHART_MADE_SECRET)
def test_the_chart_made_secret_holds_the_values_and_is_made_before_the_job(render, name):
    rendered = render(name)
    secret = rendered.one("Secret")
    decoded = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    expected = {"master-key": MASTER_KEY, "database-url": DATABASE_URL}
    if VALUE_SETS[name].get("metrics", {}).get("enabled"):
        expected["metrics-token"] = METRICS_TOKEN
    assert decoded == expected
    # The Job is a pre-install hook, so it runs before plain resources exist: the Secret it
    # mounts must be a hook too, and of a lower weight.
    annotations = secret["metadata"]["annotations"]
    assert {"pre-install", "pre-upgrade"} <= set(annotations["helm.sh/hook"].split(","))
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation"
    job = rendered.one("Job")["metadata"]["annotations"]
    assert int(annotations["helm.sh/hook-weight"]) < int(job["helm.sh/hook-weight"])


@pytest.mark.parametrize("name", VALUE_SETS)
def test_pods_read_the_secrets_as_files_from_a_read_only_mount(render, name):
    values = VALUE_SETS[name]
    files = ["master-key", "database-url"]
    if values.get("metrics", {}).get("enabled"):
        files.append("metrics-token")
    # The files keep their names whatever the keys of an existing Secret are called.
    keys = {"master-key": values.get("existingSecretKeys", {}).get("masterKey", "master-key")}
    expected_items = [{"key": keys.get(file, file), "path": file} for file in files]
    expected_env = {
        f"SIGNING_SERVICE_{file.upper().replace('-', '_')}_FILE": f"{SECRETS_DIR}/{file}"
        for file in files
    }
    for pod in render(name).pod_specs():
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        secret = volumes["secrets"]["secret"]
        assert secret["secretName"] == values.get("existingSecret", FULLNAME)
        assert secret["items"] == expected_items
        assert secret["defaultMode"] == 0o440
        (container,) = pod["containers"]
        mount = {"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True}
        assert mount in container["volumeMounts"]
        env = env_values(container)
        assert {
            name: value for name, value in env.items() if name.endswith("_FILE")
        } == expected_env


def test_an_existing_secret_is_used_and_no_secret_is_made(render):
    rendered = render("existing-secret")
    assert rendered.all("Secret") == []
    template = rendered.one("Deployment")["spec"]["template"]
    # The checksum would be of an empty template: the admin's Secret is not the chart's to watch.
    assert "checksum/secret" not in template["metadata"].get("annotations", {})


def test_pods_roll_when_the_chart_made_secret_changes(render):
    checksum = render("defaults").one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    other_key = base64.b64encode(bytes(32)).decode()
    changed = render("other-key", {"secrets": {**SECRETS, "masterKey": other_key}})
    other = changed.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert checksum["checksum/secret"] != other["checksum/secret"]


REFUSED = {
    "no secrets at all": ({}, "Set secrets.masterKey"),
    "a database but no master key": (
        {"secrets": {"databaseUrl": DATABASE_URL}},
        "or name a Secret you made in existingSecret",
    ),
    "a master key that is not 32 bytes of base64": (
        {"secrets": {**SECRETS, "masterKey": "correct horse battery staple"}},
        "secrets.masterKey must be 32 random bytes in base64",
    ),
    "SQLite": (
        {"secrets": {**SECRETS, "databaseUrl": "sqlite:////data/db.sqlite3"}},
        "must name a PostgreSQL database",
    ),
    "both an existing secret and secret values": (
        {"secrets": SECRETS, "existingSecret": "admin-made-secret"},
        "either existingSecret or secrets.*, not both",
    ),
    "metrics without a token": ({"secrets": SECRETS, "metrics": {"enabled": True}}, "metricsToken"),
    "a ServiceMonitor without metrics": (
        {"secrets": SECRETS, "metrics": {"serviceMonitor": {"enabled": True}}},
        "metrics.serviceMonitor.enabled needs metrics.enabled",
    ),
    "an Ingress without a host": (
        {"secrets": SECRETS, "ingress": {**INGRESS, "host": ""}},
        "ingress.enabled needs ingress.host",
    ),
    "an Ingress without trusted proxies": (
        {"secrets": SECRETS, "ingress": {**INGRESS, "trustedProxies": ""}},
        "ingress.enabled needs ingress.trustedProxies",
    ),
    "a pod certificate behind an Ingress": (
        {"secrets": SECRETS, "ingress": INGRESS, "tls": {"existingSecret": "signing-tls"}},
        "behind an Ingress put the certificate in ingress.tls.secretName",
    ),
}


@pytest.mark.parametrize(("values", "message"), REFUSED.values(), ids=REFUSED)
def test_values_that_would_deploy_a_broken_service_fail_the_render(run_helm, values, message):
    result = run_helm("template", values)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Error:" in result.stderr


# --- pods ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_pod_runs_unprivileged_on_a_read_only_root(render, name):
    pods = render(name).pod_specs()
    assert len(pods) == 2  # the Deployment's and the migrations Job's
    for pod in pods:
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert pod["automountServiceAccountToken"] is False
        # Service links would add SIGNING_SERVICE_PORT and the like to the service's settings.
        assert pod["enableServiceLinks"] is False
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        (container,) = pod["containers"]
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["runAsNonRoot"] is True
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        # The root filesystem is read-only: the places the service writes are scratch volumes.
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        for path in ("/data", "/tmp"):
            assert "emptyDir" in volumes[mounts[path]]
        assert env_values(container)["SIGNING_SERVICE_DATA_DIR"] == "/data"
        assert container["resources"]["limits"]["memory"]


@pytest.mark.parametrize(("name", "scheme"), [("defaults", "HTTPS"), ("ingress", "HTTP")])
def test_probes_ask_healthz_and_readyz_in_the_scheme_the_pods_serve(render, name, scheme):
    server = render(name).server()
    (port,) = server["ports"]
    assert port["containerPort"] == 8443
    assert port["name"] == scheme.lower()
    paths = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"}
    for probe, path in paths.items():
        check = server[probe]["httpGet"]
        assert (check["path"], check["scheme"], check["port"]) == (path, scheme, port["name"])
        # The kubelet would send the pod's address as Host, which ALLOWED_HOSTS refuses.
        assert check["httpHeaders"] == [{"name": "Host", "value": "localhost"}]
    allowed = env_values(server)["SIGNING_SERVICE_ALLOWED_HOSTS"].split(",")
    assert "localhost" in allowed


def test_allowed_hosts_take_the_pod_address_from_the_downward_api(render):
    server = render("metrics").server()
    names = [entry["name"] for entry in server["env"]]
    # $(POD_IP) is expanded by the kubelet only from a variable defined earlier in the list.
    assert names.index("POD_IP") < names.index("SIGNING_SERVICE_ALLOWED_HOSTS")
    assert env_of(server)["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert "$(POD_IP)" in env_values(server)["SIGNING_SERVICE_ALLOWED_HOSTS"].split(",")


def test_the_migrations_job_runs_prepare_as_a_hook_with_the_services_settings(render):
    rendered = render("metrics")
    job = rendered.one("Job")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] + container["args"] == ["signing-service", "prepare"]
    assert pod["restartPolicy"] == "Never"
    server = rendered.server()
    deployment_pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    for field in ("image", "env", "volumeMounts", "securityContext"):
        assert container[field] == server[field], field
    assert pod["volumes"] == deployment_pod["volumes"]
    # Its pod must not receive the Service's traffic.
    selector = rendered.one("Service")["spec"]["selector"]
    assert not selector.items() <= job["spec"]["template"]["metadata"]["labels"].items()


def test_the_pods_serve_https_themselves_without_an_ingress(render):
    rendered = render("defaults")
    env = env_values(rendered.server())
    assert "SIGNING_SERVICE_BEHIND_PROXY" not in env
    assert rendered.server()["args"] == ["run", "--bind", "0.0.0.0:8443"]
    assert rendered.all("Ingress") == []
    # The self-signed certificate covers the names the Service is reached by.
    hostnames = env["SIGNING_SERVICE_HOSTNAMES"].split(",")
    assert f"{FULLNAME}.default.svc" in hostnames
    assert set(hostnames) <= set(env["SIGNING_SERVICE_ALLOWED_HOSTS"].split(","))


def test_the_pods_serve_a_given_certificate_from_a_read_only_mount(render):
    rendered = render("own-certificate")
    server = rendered.server()
    env = env_values(server)
    assert env["SIGNING_SERVICE_TLS_CERT_PATH"] == "/run/secrets/signing-service-tls/tls.crt"
    assert env["SIGNING_SERVICE_TLS_KEY_PATH"] == "/run/secrets/signing-service-tls/tls.key"
    assert "SIGNING_SERVICE_HOSTNAMES" not in env
    mount = {"name": "tls", "mountPath": "/run/secrets/signing-service-tls", "readOnly": True}
    assert mount in server["volumeMounts"]
    volumes = rendered.one("Deployment")["spec"]["template"]["spec"]["volumes"]
    (tls,) = [volume["secret"] for volume in volumes if volume["name"] == "tls"]
    assert tls["secretName"] == "signing-tls"


def test_behind_an_ingress_the_pods_serve_http_and_trust_only_the_proxies(render):
    rendered = render("ingress")
    env = env_values(rendered.server())
    assert env["SIGNING_SERVICE_BEHIND_PROXY"] == "true"
    assert env["SIGNING_SERVICE_TRUSTED_PROXIES"] == "10.244.0.0/16"
    assert env["SIGNING_SERVICE_PROXY_COUNT"] == "1"
    assert env["SIGNING_SERVICE_PUBLIC_URL"] == "https://signing.example.com"
    assert env["SIGNING_SERVICE_CSRF_TRUSTED_ORIGINS"] == "https://signing.example.com"
    assert "signing.example.com" in env["SIGNING_SERVICE_ALLOWED_HOSTS"].split(",")
    assert not {"SIGNING_SERVICE_TLS_CERT_PATH", "SIGNING_SERVICE_HOSTNAMES"} & env.keys()

    ingress = rendered.one("Ingress")["spec"]
    assert ingress["ingressClassName"] == "nginx"
    assert ingress["tls"] == [{"hosts": ["signing.example.com"], "secretName": "signing-tls"}]
    (rule,) = ingress["rules"]
    assert rule["host"] == "signing.example.com"
    (path,) = rule["http"]["paths"]
    assert path["backend"]["service"] == {"name": FULLNAME, "port": {"name": "http"}}
    annotations = rendered.one("Ingress")["metadata"]["annotations"]
    assert annotations == INGRESS["annotations"]


@pytest.mark.parametrize(("name", "port_name"), [("defaults", "https"), ("ingress", "http")])
def test_the_service_sends_port_8443_to_the_serving_pods(render, name, port_name):
    rendered = render(name)
    service = rendered.one("Service")["spec"]
    assert service["type"] == "ClusterIP"
    assert service["ports"] == [
        {"name": port_name, "port": 8443, "targetPort": port_name, "protocol": "TCP"}
    ]
    pod_labels = rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= pod_labels.items()
    deployment_selector = rendered.one("Deployment")["spec"]["selector"]["matchLabels"]
    assert service["selector"] == deployment_selector


@pytest.mark.parametrize(("name", "replicas"), [("defaults", 2), ("replicas-3", 3)])
def test_more_than_one_replica_gets_a_disruption_budget(render, name, replicas):
    rendered = render(name)
    assert rendered.one("Deployment")["spec"]["replicas"] == replicas
    budget = rendered.one("PodDisruptionBudget")["spec"]
    assert budget["minAvailable"] == 1
    assert budget["selector"]["matchLabels"] == rendered.one("Service")["spec"]["selector"]
    spread = rendered.one("Deployment")["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread[0]["topologyKey"] == "kubernetes.io/hostname"
    assert spread[0]["whenUnsatisfiable"] == "ScheduleAnyway"


def test_a_single_replica_gets_no_disruption_budget(render):
    rendered = render("replicas-1")
    assert rendered.one("Deployment")["spec"]["replicas"] == 1
    assert rendered.all("PodDisruptionBudget") == []


def test_labels_are_the_standard_set(render):
    for manifest in render("ingress").manifests:
        labels = manifest["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "signing-service"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["helm.sh/chart"] == "signing-service-0.1.0"


# --- metrics -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["defaults", "ingress", "existing-secret"])
def test_no_service_monitor_unless_enabled(render, name):
    rendered = render(name)
    assert rendered.all("ServiceMonitor") == []
    assert "SIGNING_SERVICE_METRICS_TOKEN_FILE" not in env_values(rendered.server())


@pytest.mark.parametrize(
    ("name", "scheme", "tls_config"),
    [
        ("metrics", "https", {"insecureSkipVerify": True}),  # each pod's own self-signed one
        ("own-certificate", "https", {"serverName": f"{FULLNAME}.default.svc"}),
        ("metrics-behind-ingress", "http", None),
    ],
)
def test_the_service_monitor_scrapes_with_the_token_from_the_secret(
    render, name, scheme, tls_config
):
    rendered = render(name)
    monitor = rendered.one("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    spec = monitor["spec"]
    assert spec["selector"]["matchLabels"] == rendered.one("Service")["spec"]["selector"]
    (endpoint,) = spec["endpoints"]
    (service_port,) = rendered.one("Service")["spec"]["ports"]
    assert endpoint["port"] == service_port["name"]
    assert endpoint["scheme"] == scheme
    assert endpoint["path"] == "/metrics"
    assert endpoint["bearerTokenSecret"] == {"name": FULLNAME, "key": "metrics-token"}
    assert endpoint.get("tlsConfig") == tls_config


# --- NOTES.txt -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def notes(run_helm, tmp_path_factory):
    """NOTES.txt as `helm install` would print it. `helm template` leaves NOTES out, so a copy of
    the chart renders it into a manifest of its own."""
    chart = tmp_path_factory.mktemp("notes") / "signing-service"
    shutil.copytree(CHART, chart)
    (chart / "templates" / "NOTES.txt").rename(chart / "notes.txt")
    (chart / "templates" / "notes.yaml").write_text(
        'notes: {{ tpl (.Files.Get "notes.txt") . | toJson }}\n'
    )

    def render_notes(name: str) -> str:
        result = run_helm("template", VALUE_SETS[name], chart=chart)
        assert result.returncode == 0, result.stderr
        (document,) = [doc for doc in yaml.safe_load_all(result.stdout) if doc and "notes" in doc]
        return document["notes"]

    return render_notes


def test_the_notes_say_how_to_reach_the_service_and_back_up_the_master_key(notes):
    text = notes("existing-secret")
    assert f"port-forward service/{FULLNAME} 8443:8443" in text
    assert "get secret admin-made-secret" in text
    assert "jsonpath='{.data.the-master-key}'" in text
    assert "self-signed certificate" in text
    assert "helm uninstall" not in text  # only the chart's own Secret outlives the release

    text = notes("ingress")
    assert "https://signing.example.com/" in text
    assert f"get secret {FULLNAME}" in text
    assert "helm uninstall" in text
    assert "self-signed" not in text
