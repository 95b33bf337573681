import base64
import os
import stat
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from signing_service.master_key import derive_key, load_or_create_master_key


@pytest.fixture(autouse=True)
def no_supplied_key(monkeypatch):
    monkeypatch.delenv("SIGNING_SERVICE_MASTER_KEY", raising=False)
    monkeypatch.delenv("SIGNING_SERVICE_MASTER_KEY_FILE", raising=False)


def test_it_creates_a_private_data_dir_and_key_file_once(tmp_path):
    data_dir = tmp_path / "data"
    key = load_or_create_master_key(data_dir)
    assert len(key) == 32
    assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(data_dir / "master.key").st_mode) == 0o600
    assert load_or_create_master_key(data_dir) == key


def test_a_key_file_appears_whole_and_another_process_s_key_is_kept(tmp_path, monkeypatch):
    """Two processes starting at once: the other makes its key first, between our look and our
    write. We must read its key, never an empty or half-written file, and never replace it."""
    data_dir = tmp_path / "data"
    theirs = base64.b64encode(b"k" * 32).decode() + "\n"
    link = os.link
    seen_at_link = []

    def other_process_first(source, destination):
        seen_at_link.append(Path(source).read_text())  # ours is whole before it is linked
        (data_dir / "master.key").write_text(theirs)
        link(source, destination)

    monkeypatch.setattr(os, "link", other_process_first)
    assert load_or_create_master_key(data_dir) == b"k" * 32
    assert len(base64.b64decode(seen_at_link[0])) == 32
    assert sorted(path.name for path in data_dir.iterdir()) == ["master.key"]  # no leftovers


def test_it_takes_the_key_from_the_environment(tmp_path, monkeypatch):
    supplied = bytes(range(32))
    monkeypatch.setenv("SIGNING_SERVICE_MASTER_KEY", base64.b64encode(supplied).decode())
    assert load_or_create_master_key(tmp_path / "data") == supplied
    assert not (tmp_path / "data" / "master.key").exists()


def test_it_takes_the_key_from_a_file(tmp_path, monkeypatch):
    supplied = bytes(range(1, 33))
    key_file = tmp_path / "key"
    key_file.write_text(base64.b64encode(supplied).decode() + "\n")
    monkeypatch.setenv("SIGNING_SERVICE_MASTER_KEY_FILE", str(key_file))
    assert load_or_create_master_key(tmp_path / "data") == supplied


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not base64!", "not valid base64"),
        (base64.b64encode(b"short").decode(), "must be 32 bytes, not 5"),
    ],
)
def test_it_refuses_a_bad_key(tmp_path, monkeypatch, value, message):
    monkeypatch.setenv("SIGNING_SERVICE_MASTER_KEY", value)
    with pytest.raises(ImproperlyConfigured, match=message):
        load_or_create_master_key(tmp_path)


def test_it_names_a_missing_key_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SIGNING_SERVICE_MASTER_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="Cannot read SIGNING_SERVICE_MASTER_KEY_FILE"):
        load_or_create_master_key(tmp_path)


def test_derived_keys_differ_by_purpose():
    master = bytes(32)
    assert derive_key(master, "a") != derive_key(master, "b")
    assert derive_key(master, "a") == derive_key(master, "a")
    assert master not in {derive_key(master, "a")}
