"""The client download: the real Signing Manager wheel, built from this checkout, offered by the
service, fetched without a session over HTTPS that trusts only the service's certificate, and
installed into a fresh virtual environment where it runs without any of the service's packages.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

REPOSITORY = Path(__file__).resolve().parents[3]
BUILD_CLIENT = REPOSITORY / "scripts" / "build-client"
FIND_SERVICE_PACKAGES = (
    "import importlib.util as u; print(u.find_spec('django'), u.find_spec('signing_service'))"
)
WHEEL_LINK = re.compile(r'href="(/client/(signing_manager-[^"/]+-py3-none-any\.whl))"')


def uv_command() -> list[str]:
    uv = shutil.which("uv")
    return [uv] if uv else ["python3", "-m", "uv"]


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, **kwargs
    )
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    return result


@pytest.mark.e2e
def test_client_wheel_downloads_without_a_session_and_installs_alone(
    tmp_path, start_service, new_admin
):
    # The operator builds the client into the data directory before starting the service.
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    run([str(BUILD_CLIENT), str(data_dir / "client")], cwd=REPOSITORY)
    built = sorted((data_dir / "client").glob("signing_manager-*.whl"))
    assert [path.name for path in built] == ["signing_manager-0.1.0-py3-none-any.whl"]
    wheel = built[0]
    service = start_service(data_dir)

    # A signed-in user finds the download on the main page.
    admin = new_admin(service)
    main_page = admin.get("/")
    assert main_page.status_code == 200
    links = WHEEL_LINK.findall(main_page.text)
    assert links, main_page.text
    assert {name for _, name in links} == {wheel.name}
    link = links[0][0]

    # A build machine fetches it with no session, trusting exactly the service's certificate.
    with httpx.Client(
        base_url=service.url, verify=service.ssl_context(), follow_redirects=False, timeout=30
    ) as anonymous:
        download = anonymous.get(link)
        assert download.status_code == 200, download.text
        assert download.content == wheel.read_bytes()
        assert wheel.name in download.headers["content-disposition"]
        assert "attachment" in download.headers["content-disposition"]
        assert not anonymous.cookies

        certificate = anonymous.get("/client/signing-service.pem")
        assert certificate.status_code == 200
        assert certificate.content == service.cert_path.read_bytes()
        assert certificate.content == (data_dir / "tls" / "cert.pem").read_bytes()
        assert certificate.content.startswith(b"-----BEGIN CERTIFICATE-----")

        # Only the one wheel is served; other names under /client/ are not found.
        assert anonymous.get("/client/signing_manager-9.9.9-py3-none-any.whl").status_code == 404
        assert anonymous.get("/client/.gitignore").status_code == 404

    # Installed on its own, the downloaded wheel runs, and brought no Django along.
    downloaded = tmp_path / "download" / wheel.name
    downloaded.parent.mkdir()
    downloaded.write_bytes(download.content)
    venv = tmp_path / "client-venv"
    uv = uv_command()
    run([*uv, "venv", "--quiet", "--python", sys.executable, str(venv)])
    python = venv / "bin" / "python"
    run([*uv, "pip", "install", "--quiet", "--python", str(python), str(downloaded)])
    version = run([str(venv / "bin" / "signing-manager"), "--version"])
    assert version.stdout.strip() == "signing-manager 0.1.0"
    installed = run([*uv, "pip", "list", "--python", str(python), "--format", "freeze"])
    names = {line.split("==")[0].lower() for line in installed.stdout.splitlines()}
    assert "signing-manager" in names, installed.stdout
    assert not names & {"django", "signing-service"}, installed.stdout
    probe = run([str(python), "-c", FIND_SERVICE_PACKAGES], cwd=tmp_path)
    assert probe.stdout.split() == ["None", "None"]
