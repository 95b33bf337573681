"""The client download, as a new installation offers it: with no build step, the service packs
the Signing Manager it runs with and offers it without a session over HTTPS that trusts only
the service's certificate. The commands its pages show fetch that certificate and the wheel,
install it into a fresh virtual environment (with pip, as pipx does) and connect it to the
service, as a CI runner without a keyring does. It runs there without the service's packages.
"""

from __future__ import annotations

import html
import os
import re
import shlex
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import httpx
import pytest

from signing_service.test import RunningService, copyable_value
from signing_service.tls import certificate_sha256

VERSION = metadata.version("signing-manager")
WHEEL = f"signing_manager-{VERSION}-py3-none-any.whl"
FIND_SERVICE_PACKAGES = (
    "import importlib.util as u; print(u.find_spec('django'), u.find_spec('signing_service'))"
)


def uv_command() -> list[str]:
    uv = shutil.which("uv")
    return [uv] if uv else ["python3", "-m", "uv"]


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, **kwargs
    )
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    return result


def pipx_standin(folder: Path, venv: Path) -> Path:
    """A ``pipx`` for the install command: ``pipx install WHEEL`` puts the wheel in a virtual
    environment of its own with that environment's pip, here ``venv``'s, with no package index
    (the dependencies come after, from the index); the folder holding it, for ``PATH``."""
    folder.mkdir()
    script = folder / "pipx"
    pip = venv / "bin" / "pip"
    script.write_text(
        "#!/bin/sh\n"
        '[ "$1" = install ] && [ $# -eq 2 ] || { echo "unexpected: pipx $*" >&2; exit 64; }\n'
        f'exec {shlex.quote(str(pip))} install --no-index --no-deps "$2"\n'
    )
    script.chmod(0o755)
    return folder


@pytest.mark.e2e
def test_a_new_service_offers_its_client_and_the_pages_commands_set_it_up(
    tmp_path, start_service, new_admin
):
    # Nothing but `signing-service run`: the wheel is the service's own doing.
    service = start_service(tmp_path / "data")
    wheel = service.data_dir / "client" / WHEEL
    assert wheel.is_file()
    assert f"Signing Manager download {wheel}" in service.log()
    tested = run([sys.executable, "-m", "zipfile", "-t", str(wheel)])
    assert tested.stdout == "Done testing\n"

    # The main page and the page of a new API key show the same set-up, each with its key.
    admin = new_admin(service)
    main_page = admin.get("/").text
    created = admin.post_form("/api-keys/new/", {"name": "build machines"})
    assert created.status_code == 302
    key_page = admin.get(created.headers["location"]).text
    secret = copyable_value(key_page, "api-key-secret")
    install = copyable_value(key_page, "install-command")
    assert install == copyable_value(main_page, "install-command")
    assert install == (
        f"curl --cacert signing-service.pem --remote-name {service.url}/client/{WHEEL}"
        f" && pipx install ./{WHEEL}"
    )
    configure = copyable_value(key_page, "configure-command")
    assert configure == f"signing-manager -s -i {service.url} -a {secret} -u"
    assert copyable_value(main_page, "configure-command") == configure.replace(
        secret, "YOUR_API_KEY"
    )

    # A build machine fetches the certificate and the wheel with no session, trusting exactly
    # the service's certificate, by the address that stays the same across versions.
    with httpx.Client(
        base_url=service.url, verify=service.ssl_context(), follow_redirects=False, timeout=30
    ) as anonymous:
        latest = anonymous.get("/client/signing-manager.whl")
        assert latest.status_code == 302
        assert latest.headers["location"] == f"/client/{WHEEL}"
        download = anonymous.get(latest.headers["location"])
        assert download.status_code == 200, download.text
        assert download.content == wheel.read_bytes()
        assert download.headers["content-disposition"] == f'attachment; filename="{WHEEL}"'

        certificate = anonymous.get("/client/signing-service.pem")
        assert certificate.status_code == 200
        assert certificate.content == service.cert_path.read_bytes()
        assert not anonymous.cookies

        # Only the one wheel is served; other names under /client/ are not found.
        assert anonymous.get("/client/signing_manager-9.9.9-py3-none-any.whl").status_code == 404
        assert anonymous.get("/client/.gitignore").status_code == 404

    # On the build machine, the page's commands as they read: the certificate, then the wheel
    # (curl trusting that certificate alone) installed by pipx.
    build_machine = tmp_path / "build-machine"
    build_machine.mkdir()
    venv = tmp_path / "client-venv"
    run([sys.executable, "-m", "venv", str(venv)])
    path = f"{pipx_standin(tmp_path / 'tools', venv)}{os.pathsep}{os.environ['PATH']}"
    for command in (copyable_value(key_page, "certificate-command"), install):
        run(["bash", "-c", command], cwd=build_machine, env={**os.environ, "PATH": path})
    assert (build_machine / "signing-service.pem").read_bytes() == service.cert_path.read_bytes()
    assert (build_machine / WHEEL).read_bytes() == wheel.read_bytes()
    shown = run([str(venv / "bin" / "pip"), "show", "signing-manager"])
    assert f"Version: {VERSION}" in shown.stdout
    # Its dependencies, from the package index as pipx would fetch them.
    uv = uv_command()
    run(
        [*uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), f"./{WHEEL}"],
        cwd=build_machine,
    )
    version = run([str(venv / "bin" / "signing-manager"), "--version"])
    assert version.stdout.strip() == f"signing-manager {VERSION}"
    installed = run(
        [*uv, "pip", "list", "--python", str(venv / "bin" / "python"), "--format", "freeze"]
    )
    names = {line.split("==")[0].lower() for line in installed.stdout.splitlines()}
    assert "signing-manager" in names, installed.stdout
    assert not names & {"django", "signing-service"}, installed.stdout
    probe = run([str(venv / "bin" / "python"), "-c", FIND_SERVICE_PACKAGES], cwd=tmp_path)
    assert probe.stdout.split() == ["None", "None"]

    # Set up as the page tells a CI runner without a keyring: the variables it shows (the key
    # and the certificate's fingerprint), nothing saved. Then it reaches the service.
    variables = dict(
        re.findall(r"<code>(SIGNING_MANAGER_\w+)=([^<]+)</code>", html.unescape(key_page))
    )
    assert variables == {
        "SIGNING_MANAGER_URL": service.url,
        "SIGNING_MANAGER_API_KEY": secret,
        "SIGNING_MANAGER_SERVICE_SHA256": certificate_sha256(service.cert_path),
    }
    client_env = {
        **os.environ,
        **variables,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "SIGNING_MANAGER_CONFIG_DIR": str(tmp_path / "client-config"),
        "SIGNING_MANAGER_LOG_DIR": str(tmp_path / "client-log"),
    }
    listed = run(["signing-manager", "-r", "--json"], env=client_env, cwd=build_machine)
    assert listed.stdout.strip() == "[]", listed.stdout
    assert not (tmp_path / "client-config" / "pinned-certificate.pem").exists()
    # A desktop uses the configure command instead, which pins the certificate on first use.
    desktop_env = {**client_env, "SIGNING_MANAGER_CONFIG_DIR": str(tmp_path / "desktop")}
    del desktop_env["SIGNING_MANAGER_SERVICE_SHA256"]
    run(shlex.split(configure), env=desktop_env, cwd=build_machine)
    listed = run(["signing-manager", "-r", "--json"], env=desktop_env, cwd=build_machine)
    assert "Trusting the service's certificate" in listed.stderr


@pytest.mark.e2e
def test_a_client_directory_it_cannot_write_costs_a_warning_not_the_service(
    tmp_path, service_environment, new_admin
):
    # The tests run as root, whom permissions do not stop: a file is where a folder should be.
    (tmp_path / "blocked").write_text("a file, not a folder")
    blocked = tmp_path / "blocked" / "client"
    environment = {**service_environment, "SIGNING_SERVICE_CLIENT_WHEEL_DIR": str(blocked)}
    service = RunningService(tmp_path / "data", environment).start()
    try:
        problem = f"the service could not write {WHEEL} to {blocked} (Not a directory)"
        mentions = [line for line in service.log().splitlines() if "Signing Manager" in line]
        assert len(mentions) == 1, service.log()
        assert mentions[0].endswith(
            f"WARNING signing_service: No Signing Manager download: {problem}."
        )
        assert "Traceback" not in service.log()

        main_page = new_admin(service).get("/")
        assert main_page.status_code == 200
        assert f"No Signing Manager package is available to download: {problem}" in main_page.text
        assert "Download Signing Manager" not in main_page.text
        with httpx.Client(base_url=service.url, verify=service.ssl_context()) as anonymous:
            assert anonymous.get("/client/signing-manager.whl").status_code == 404
            assert anonymous.get(f"/client/{WHEEL}").status_code == 404
    finally:
        assert service.stop() == 0
