"""Fuzzing ``pkgutil --check-signature`` and ``productsign`` with flat packages (XAR).

Seeds are packages written by another archiver, libarchive's ``bsdtar --format xar`` (gzip
with a SHA-1 TOC checksum, stored members, bzip2 with MD5), each unsigned and signed by our
engine with a local RSA installer identity; ``--seeds DIR`` adds real ones. The layout
(xar's ``xar.h``, reference section 10) names the header's fields and, from the TOC, every heap
member, the TOC checksum and the signature.

Mutations are those of ``fuzz.mutations`` on the bytes, and, half the time, one on the TOC
itself: inflated, an element's offset, length, size, encoding, checksum style, certificate or
name changed, elements repeated (thousands of ``<data>`` over one range) or removed, an
entity-expansion DOCTYPE, an unreadable encoding, deep nesting; then compressed again, the
header's lengths fixed, and sometimes the TOC checksum in the heap recomputed so that only the
signature can tell.

A trial runs ``pkgutil --check-signature`` on the mutant and ``productsign`` (our engine, with
the local identity) from it. Beyond the harness's rules: a mutant whose signed bytes changed
(all but the signature blobs) never checks as signed, and a package ``productsign`` wrote checks
as signed.
"""

from __future__ import annotations

import hashlib
import random
import struct
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from fuzz.harness import (
    Finding,
    Limits,
    checked_cli,
    expect_clean,
    expect_unchanged,
    run_engine,
    snapshot,
)
from fuzz.mutations import BOUNDARIES, Field, Layout, Region, mutate
from signing_manager.pkg.signing import sign_package
from signing_manager.pkg.xar import XarArchive

HEADER = struct.Struct(">4sHHQQI")
BSDTAR_OPTIONS = {
    "gzip-sha1": [],
    "stored": ["--options", "xar:compression=none"],
    "bzip2-md5": ["--options", "xar:toc-checksum=md5,xar:compression=bzip2"],
}
NUMBERS = ("offset", "length", "size")
STYLES = {
    "encoding": ["application/x-gzip", "application/x-bzip2", "application/octet-stream",
                 "application/x-lzma", "bogus"],
    "checksum": ["sha1", "md5", "sha256", "sha512", "none", "bogus"],
    "signature": ["RSA", "CMS", "bogus"],
}  # fmt: skip
HASHES = {"sha1": "sha1", "md5": "md5", "sha256": "sha256", "sha512": "sha512"}


@dataclass(frozen=True)
class Seed:
    name: str
    data: bytes
    layout: Layout
    signatures: list[tuple[int, int]]  # where the signature blobs (RSA, CMS) lie in the file


# --- Seeds -----------------------------------------------------------------------------------


def lay_out_tree(root: Path) -> None:
    """A product archive's shape: Distribution, a component package, resources, a link."""
    (root / "Foo.pkg").mkdir(parents=True)
    (root / "Resources" / "en.lproj").mkdir(parents=True)
    (root / "Distribution").write_text('<?xml version="1.0"?><installer-gui-script/>\n')
    (root / "Foo.pkg" / "PackageInfo").write_text('<pkg-info identifier="com.example.foo"/>\n')
    (root / "Foo.pkg" / "Payload").write_bytes(random.Random(1).randbytes(3000))
    (root / "Resources" / "en.lproj" / "Welcome.txt").write_text("Welcome & <hello>\n")
    (root / "link").symlink_to("Distribution")


def make_seeds(folder: Path, signer, extra: list[Path]) -> list[Seed]:
    tree = folder / "tree"
    lay_out_tree(tree)
    seeds = []
    for name, options in BSDTAR_OPTIONS.items():
        output = folder / f"{name}.pkg"
        subprocess.run(
            ["bsdtar", "--format", "xar", *options, "-cf", str(output), "-C", str(tree), "."],
            check=True,
            capture_output=True,
            timeout=60,
        )
        data = output.read_bytes()
        seeds += [
            seed(f"{name} unsigned", data),
            seed(f"{name} signed", sign_package(data, signer)),
        ]
    return seeds + [seed(path.name, path.read_bytes()) for path in extra]


def seed(name: str, data: bytes) -> Seed:
    archive = XarArchive.parse(data)
    heap = archive.header.header_size + archive.header.toc_compressed
    fields = [
        Field(name, at, size, "big")
        for name, at, size in (
            ("header size", 4, 2),
            ("version", 6, 2),
            ("TOC length", 8, 8),
            ("TOC inflated length", 16, 8),
            ("checksum algorithm", 24, 4),
        )
    ]
    regions = [
        Region("header", 0, archive.header.header_size),
        Region("TOC", archive.header.header_size, archive.header.toc_compressed),
    ]
    signatures = []
    for element in archive.toc.iter():
        if element.find("offset") is None:
            continue
        offset, size = archive.heap_span(element)
        regions.append(Region(element.tag, heap + offset, size))
        if element.tag in ("signature", "x-signature"):
            signatures.append((heap + offset, heap + offset + size))
    return Seed(name, data, Layout(fields, regions), sorted(signatures))


def is_package(data: bytes) -> bool:
    return data[:4] == b"xar!"


def changed_signed_bytes(seed: Seed, mutant: bytes) -> bool:
    """Whether the mutant differs from a signed seed anywhere but in its signature blobs
    (bytes added at the end belong to no member, and are nobody's to check)."""
    if not seed.signatures or len(mutant) < len(seed.data):
        return bool(seed.signatures)
    start = 0
    for blob_start, blob_end in [*seed.signatures, (len(seed.data), len(seed.data))]:
        if mutant[start:blob_start] != seed.data[start:blob_start]:
            return True
        start = blob_end
    return False


# --- TOC mutations ---------------------------------------------------------------------------


def mutate_toc(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """One change to the TOC, put back coherently (lengths in the header; maybe checksum)."""
    archive = XarArchive.parse(data)
    root = archive.toc
    change = rng.choice([change_number, change_style, change_text, repeat_element, remove_element])
    step = change(rng, root)
    xml = ElementTree.tostring(root, encoding="UTF-8", xml_declaration=True)
    if rng.random() < 0.15:
        xml, step = hostile_xml(rng, xml)
    heap = data[archive.header.header_size + archive.header.toc_compressed :]
    compressed = zlib.compress(xml)
    header = HEADER.pack(
        b"xar!", HEADER.size, 1, len(compressed), len(xml), archive.header.checksum_algorithm
    )
    if rng.random() < 0.5:
        heap, step = recompute_checksum(root, compressed, heap), f"{step}, checksum recomputed"
    return header + compressed + heap, f"TOC: {step}"


def elements(root: ElementTree.Element, tags) -> list[ElementTree.Element]:
    return [element for element in root.iter() if element.tag in tags]


def change_number(rng: random.Random, root: ElementTree.Element) -> str:
    chosen = elements(root, NUMBERS) or [root]
    element = rng.choice(chosen)
    others = [int(e.text) for e in chosen if (e.text or "").strip().isdigit()]
    value = rng.choice([*BOUNDARIES, -1, *others, "", "12abc", "1e9", " 7 "])
    element.text = str(value)
    return f"<{element.tag}> = {value!r}"


def change_style(rng: random.Random, root: ElementTree.Element) -> str:
    chosen = [e for e in root.iter() if e.tag in STYLES and "style" in e.attrib] or [root]
    element = rng.choice(chosen)
    element.set("style", rng.choice(STYLES.get(element.tag, ["bogus"])))
    return f"<{element.tag} style={element.get('style')}>"


def change_text(rng: random.Random, root: ElementTree.Element) -> str:
    chosen = elements(
        root, ("name", "X509Certificate", "extracted-checksum", "archived-checksum", "type", "link")
    ) or [root]
    element = rng.choice(chosen)
    element.text = rng.choice(
        [
            "../../escape",
            "/etc/passwd",
            "",
            "not base64!",
            "A" * 5000,
            (element.text or "")[: len(element.text or "") // 2],
            "0" * 40,
            "zz",
        ]
    )
    return f"<{element.tag}> = {element.text!r:.40}"


def repeat_element(rng: random.Random, root: ElementTree.Element) -> str:
    parents = [p for p in root.iter() if any(c.tag in ("file", "data", "signature") for c in p)]
    if not parents:
        return "nothing to repeat"
    parent = rng.choice(parents)
    child = rng.choice([c for c in parent if c.tag in ("file", "data", "signature")])
    times = rng.choice((1, 2, 100, 5000))
    for _ in range(times):
        parent.append(child)  # the same element again: the same heap range, many times
    return f"<{child.tag}> repeated {times} times"


def remove_element(rng: random.Random, root: ElementTree.Element) -> str:
    pairs = [(parent, child) for parent in root.iter() for child in parent]
    parent, child = rng.choice(pairs)
    parent.remove(child)
    return f"<{child.tag}> removed"


def hostile_xml(rng: random.Random, xml: bytes) -> tuple[bytes, str]:
    body = xml.split(b"?>", 1)[1]
    kind = rng.choice(["entities", "encoding", "nesting", "not XML"])
    if kind == "entities":
        entities = b'<!ENTITY a "aaaaaaaaaa">' + b"".join(
            b'<!ENTITY %s "%s">' % (chr(98 + i).encode(), (b"&%s;" % chr(97 + i).encode()) * 10)
            for i in range(8)
        )
        root_tag = body.split(b">", 1)[0].lstrip(b"<").split()[0]
        body = b"<!DOCTYPE %s [%s]>" % (root_tag, entities) + body.replace(
            b"<name>", b"<name>&i;", 1
        )
        return b'<?xml version="1.0"?>' + body, "an entity-expansion DOCTYPE"
    if kind == "encoding":
        encoding = rng.choice([b"bogus", b"UTF-32", b"UTF-16", b"ISO-8859-1"])
        return b'<?xml version="1.0" encoding="%s"?>' % encoding + body, f"encoding {encoding}"
    if kind == "nesting":
        depth = rng.choice((1000, 100_000))
        return xml.replace(b"</toc>", b"<x>" * depth + b"</x>" * depth + b"</toc>"), "nesting"
    return rng.randbytes(64), "not XML"


def recompute_checksum(root: ElementTree.Element, compressed: bytes, heap: bytes) -> bytes:
    checksum = root.find("toc/checksum")
    try:
        offset, size = int(checksum.findtext("offset")), int(checksum.findtext("size"))
        digest = hashlib.new(HASHES[checksum.get("style", "").lower()], compressed).digest()
    except (AttributeError, TypeError, ValueError, KeyError):
        return heap  # the mutation broke the checksum element itself
    if size != len(digest) or offset < 0 or offset + size > len(heap):
        return heap
    return heap[:offset] + digest + heap[offset + size :]


# --- The trial -------------------------------------------------------------------------------


class PackageTarget:
    name = "package"

    def __init__(self, seeds: list[Seed], signer, limits: Limits):
        self.seeds = seeds
        self.signer = signer
        self.limits = limits

    def make(self, rng: random.Random, folder: Path) -> tuple[str, Callable[[], None]]:
        chosen = rng.choice(self.seeds)
        steps = []
        data = chosen.data
        if rng.random() < 0.5:
            data, step = mutate_toc(rng, data)
            steps.append(step)
        if not steps or rng.random() < 0.3:
            data, more = mutate(rng, data, chosen.layout, rng.choice((1, 1, 2)))
            steps += more
        path = folder / "input.pkg"
        path.write_bytes(data)
        return f"{chosen.name}: {'; '.join(steps)}", lambda: self.check(chosen, data, path, folder)

    def check(self, chosen: Seed, mutant: bytes, path: Path, folder: Path) -> None:
        before = snapshot(folder)
        verdict = self.pkgutil(path)
        if verdict.status == 0 and changed_signed_bytes(chosen, mutant):
            raise Finding("pkgutil accepted a package whose signed bytes changed")
        output = folder / "signed.pkg"
        signing = expect_clean(
            run_engine(lambda: self.productsign(path, output), self.limits),
            self.limits,
            "productsign",
        )
        expect_unchanged(before, snapshot(folder, leave_out=output), "productsign changed files")
        if signing.status == 0 and self.pkgutil(output).status != 0:
            raise Finding("productsign wrote a package that does not check as signed")

    def productsign(self, source: Path, destination: Path) -> None:
        data = source.read_bytes()
        XarArchive.parse(data)
        destination.write_bytes(sign_package(data, self.signer, force=True))

    def pkgutil(self, path: Path):
        return checked_cli("pkgutil", "--check-signature", path, limits=self.limits)
