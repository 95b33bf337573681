"""codesign throughput: signing a big Mach-O file, against this machine's hashing limit.

Builds an arm64 Mach-O of about 256 MiB with clang and lld (a ``__DATA`` section of random
bytes via ``-sectcreate``), then, in the same run:

- the limit: hashlib's SHA-256 over the file's 4 KiB pages, one call per page, one thread —
  the work a CodeDirectory needs and nothing else;
- the signing engine on the mapped file, output left in memory (lay out, hash every page,
  build the CodeDirectory and the signature), ad-hoc and with a CMS signature from a local RSA
  key (a remote key adds one round trip per file, not per page);
- ``signing-manager codesign`` end to end, file in, file out (the same, then a temporary file
  written and renamed over the input);
- the I/O limit: copying the file in the kernel and renaming the copy over an old one — the
  writing that signing file to file cannot avoid.

It prints MB/s for each, its ratio to the hashing limit, and its ratio to the slower of the two
limits (min(hash rate, copy rate)). Targets: at least 0.80 of the hash rate in memory, and at
least 0.80 of min(hash rate, copy rate) file to file (issue 20).

    .venv/bin/python bench/codesign_throughput.py [--mib 256] [--rounds 3]

Needs Debian's clang and lld (scripts/system-packages). Not a test: nothing here passes or
fails on timing.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from signing_manager.codesign.command import sign_file
from signing_manager.codesign.files import map_file
from signing_manager.codesign.signing import SigningOptions, finish_all, prepare
from signing_manager.local_key import LocalSigner
from signing_service.test import cached_key, make_certificate

TARGET = 0.80
PAGE = 4096


def build_macho(folder: Path, mib: int) -> Path:
    clang = shutil.which("clang")
    if clang is None:
        raise SystemExit("clang is needed: scripts/system-packages installs it.")
    source, blob, output = folder / "main.c", folder / "blob.bin", folder / "big"
    source.write_text("int main(void) { return 0; }\n")
    blob.write_bytes(os.urandom(mib << 20))
    command = [clang, "-target", "arm64-apple-macos11", "-fuse-ld=lld", "-nostdlib",
               "-Wl,-e,_main", f"-Wl,-sectcreate,__DATA,__blob,{blob}", str(source), "-o",
               str(output)]  # fmt: skip
    subprocess.run(command, check=True, timeout=600)
    blob.unlink()
    return output


def local_signer() -> LocalSigner:
    key = cached_key("rsa2048")
    return LocalSigner(make_certificate(key, "Benchmark"), key)


def hash_limit(path: Path) -> float:
    """Seconds for hashlib to hash the file's 4 KiB pages, one thread."""
    view = map_file(path)
    started = time.perf_counter()
    sha256 = hashlib.sha256
    for start in range(0, len(view), PAGE):
        sha256(view[start : start + PAGE]).digest()
    return time.perf_counter() - started


def copy_limit(source: Path, work: Path) -> float:
    """Seconds to copy the file (kernel copy into a new file, then rename over an old one):
    the I/O that signing file to file cannot avoid."""
    target = work / "copy"
    shutil.copyfile(source, target)
    if hasattr(os, "sync"):
        os.sync()
    started = time.perf_counter()
    shutil.copyfile(source, work / "copy.new")
    os.replace(work / "copy.new", target)
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def sign_in_memory(source: Path, signer) -> float:
    """Seconds to lay out, hash and sign the mapped file, its output left in memory."""
    data = map_file(source)
    started = time.perf_counter()
    pending = prepare(data, signer, SigningOptions(identifier="com.example.big"))
    finish_all([pending], signer)
    return time.perf_counter() - started


def sign_file_to_file(source: Path, work: Path, signer) -> float:
    """Seconds for ``codesign -s`` on a copy of the file: map, sign, write, rename."""
    target = work / "to-sign"
    shutil.copyfile(source, target)
    with target.open("rb") as handle:  # in the page cache, as a file just built would be
        while handle.read(1 << 24):
            pass
    if hasattr(os, "sync"):
        os.sync()  # no earlier round's dirty pages left to slow this one down
    started = time.perf_counter()
    sign_file(target, signer, SigningOptions(identifier="com.example.big"))
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=256, help="Size of the Mach-O (MiB).")
    parser.add_argument("--rounds", type=int, default=3, help="Best of this many runs.")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="codesign-bench-") as name:
        folder = Path(name)
        source = build_macho(folder, arguments.mib)
        size = source.stat().st_size
        limit = min(hash_limit(source) for _ in range(arguments.rounds))
        signer = local_signer()
        copying = min(copy_limit(source, folder) for _ in range(arguments.rounds))
        slower = max(limit, copying)  # seconds at min(hash rate, copy rate)
        rows = [
            ("hashlib, 4 KiB pages, 1 thread (hash limit)", limit, None),
            ("copy the file and rename (I/O limit)", copying, None),
        ]
        for label, chosen in (("ad-hoc", None), ("CMS, local RSA key", signer)):
            memory = min(sign_in_memory(source, chosen) for _ in range(arguments.rounds))
            rows.append((f"sign, {label}: in memory", memory, ("hash", limit)))
            disk = min(sign_file_to_file(source, folder, chosen) for _ in range(arguments.rounds))
            rows.append((f"sign, {label}: file to file", disk, ("min(hash, copy)", slower)))
    print(f"Mach-O of {size / 2**20:.0f} MiB, {os.cpu_count()} cores, best of {arguments.rounds}")
    print(f"{'':46} {'MB/s':>8} {'÷ hash':>7} {'÷ min(hash, copy)':>18}  target")
    for label, seconds, against in rows:
        target = ""
        if against is not None:
            which, limit_seconds = against
            verdict = "met" if limit_seconds / seconds >= TARGET else "NOT met"
            target = f"≥ {TARGET:.2f} of {which}: {verdict}"
        print(
            f"{label:46} {size / seconds / 1e6:8.0f} {limit / seconds:7.2f} "
            f"{slower / seconds:18.2f}  {target}"
        )


if __name__ == "__main__":
    main()
