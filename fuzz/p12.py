"""Fuzzing the service's .p12 import with PKCS#12 files (RFC 7292).

Seeds are written by ``openssl pkcs12 -export`` in the encodings real tools use (OpenSSL 3's
AES-256 with PBKDF2, the legacy RC2/3DES, and Keychain Access's 3DES with a SHA-1 MAC), for RSA
and EC keys, with and without a CA certificate, plus one without encryption or MAC.

A PKCS#12 file is DER nested in DER: the authenticated safe is an OCTET STRING holding a
SEQUENCE of ContentInfos, whose contents hold SafeContents, whose bags hold certificates and
keys. ``DerNode`` reads that tree (descending into OCTET STRINGs that hold DER) and writes it
back with correct lengths, so a mutation can change one value and leave the rest coherent:
an INTEGER (iteration counts, versions, key lengths) set to a boundary, an OID swapped for
another algorithm's, a string's content replaced, a node removed, repeated or re-tagged. The
MAC is then recomputed with the password (most of the time), so the mutant reaches the
decryption and the certificate checks instead of stopping at the MAC. Blind byte mutations
make lengths incoherent too.

A trial imports the mutant as the web page and ``signing-service identity import`` do
(``parse_p12``, then what the record keeps): it succeeds, or says why in one sentence
(``P12Error``), within the time and memory limits.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Callable
from dataclasses import dataclass

from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography.hazmat.primitives import serialization

from fuzz.harness import Limits, expect_clean, run_engine
from fuzz.mutations import Layout, Region, mutate
from signing_service.identities.certificates import describe
from signing_service.identities.p12 import P12Error, parse_p12
from signing_service.test import (
    cached_key,
    fake_ca,
    make_certificate,
    openssl_p12,
    unprotected_p12,
)

PASSWORD = "fuzz-password"
OCTET_STRING, INTEGER, OID, SEQUENCE = 0x04, 0x02, 0x06, 0x30
OIDS = [  # algorithms and types a PKCS#12 file names, and some it should not
    "1.2.840.113549.1.12.1.3", "1.2.840.113549.1.12.1.6", "1.2.840.113549.1.5.13",
    "1.2.840.113549.1.5.12", "2.16.840.1.101.3.4.1.42", "1.2.840.113549.3.2",
    "1.2.840.113549.2.9", "1.2.840.113549.2.11", "1.3.14.3.2.26", "1.2.840.113549.2.5",
    "1.2.840.113549.1.1.1", "1.2.840.10045.2.1", "1.2.840.10040.4.1", "1.3.101.112",
    "1.2.840.113549.1.7.1", "1.2.840.113549.1.7.6", "1.2.840.113549.1.12.10.1.1",
    "1.2.840.113549.1.12.10.1.2", "1.2.840.113549.1.12.10.1.3", "1.2.840.113549.1.9.22.1",
    "1.2.840.113549.1.5.14", "1.2.3.4.5",
]  # fmt: skip
INTEGERS = [0, 1, -1, 2048, 1_000_000, 1_000_001, 2**31 - 1, 2**63, 2**1024]
MAX_MAC_ITERATIONS = 100_000  # beyond this the harness does not recompute the MAC (too slow)


@dataclass
class DerNode:
    """One TLV: a primitive's ``content``, or ``children`` (a constructed value, or DER held
    in an OCTET STRING)."""

    tag: int
    content: bytes = b""
    children: list[DerNode] | None = None

    def encode(self) -> bytes:
        body = (
            self.content if self.children is None else b"".join(c.encode() for c in self.children)
        )
        return bytes([self.tag]) + encode_length(len(body)) + body

    def walk(self):
        yield self
        for child in self.children or []:
            yield from child.walk()


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def read_der(data: bytes) -> list[DerNode]:
    """Every TLV in ``data`` (which must hold whole TLVs and nothing else)."""
    nodes, offset = [], 0
    while offset < len(data):
        tag = data[offset]
        length, offset = read_length(data, offset + 1)
        content = data[offset : offset + length]
        if len(content) != length or tag & 0x1F == 0x1F:
            raise ValueError("not DER")
        offset += length
        nodes.append(parse_node(tag, content))
    return nodes


def read_length(data: bytes, offset: int) -> tuple[int, int]:
    first = data[offset]
    if first < 0x80:
        return first, offset + 1
    count = first & 0x7F
    if count == 0 or count > 4:
        raise ValueError("not DER")
    return int.from_bytes(data[offset + 1 : offset + 1 + count], "big"), offset + 1 + count


def parse_node(tag: int, content: bytes) -> DerNode:
    if tag & 0x20:
        return DerNode(tag, children=read_der(content))
    if tag == OCTET_STRING and content[:1] == bytes([SEQUENCE]):
        try:
            return DerNode(tag, children=read_der(content))
        except (ValueError, IndexError):
            pass
    return DerNode(tag, content=content)


def integer_content(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 8) // 8 or 1, "big", signed=True)


def oid_content(dotted: str) -> bytes:
    numbers = [int(part) for part in dotted.split(".")]
    out = bytes([40 * numbers[0] + numbers[1]])
    for number in numbers[2:]:
        chunk = [number & 0x7F]
        while number > 0x7F:
            number >>= 7
            chunk.insert(0, 0x80 | (number & 0x7F))
        out += bytes(chunk)
    return out


# --- Mutating the tree ------------------------------------------------------------------------


def mutate_tree(rng: random.Random, root: DerNode) -> str:
    nodes = list(root.walk())
    integers = [n for n in nodes if n.tag == INTEGER]
    oids = [n for n in nodes if n.tag == OID]
    containers = [n for n in nodes if n.children]
    kind = rng.choice(["integer", "integer", "oid", "content", "remove", "repeat", "retag"])
    if kind == "integer" and integers:
        node, value = rng.choice(integers), rng.choice(INTEGERS)
        node.content = integer_content(value)
        return f"an INTEGER = {value}"
    if kind == "oid" and oids:
        node, dotted = rng.choice(oids), rng.choice(OIDS)
        node.content = oid_content(dotted)
        return f"an OID = {dotted}"
    if kind in ("remove", "repeat") and containers:
        node = rng.choice(containers)
        index = rng.randrange(len(node.children))
        if kind == "remove":
            del node.children[index]
            return "a node removed"
        times = rng.choice((1, 2, 500))
        node.children[index + 1 : index + 1] = [node.children[index]] * times
        return f"a node repeated {times} times"
    node = rng.choice(nodes[1:])
    if kind == "retag":
        node.tag = rng.choice((0x02, 0x04, 0x05, 0x06, 0x0C, 0x30, 0x31, 0xA0, 0x80))
        return f"a node re-tagged {node.tag:#x}"
    node.children = None
    node.content = rng.choice([b"", b"\x00", rng.randbytes(rng.choice((1, 16, 300)))])
    return f"a node's content = {len(node.content)} bytes"


def recompute_mac(data: bytes, password: str) -> bytes:
    """``data`` with the MAC its authenticated safe now needs (unchanged if it cannot be
    computed: no MAC, an algorithm not supported here, or too many iterations)."""
    try:
        pfx = asn1_pkcs12.Pfx.load(data)
        mac_data = pfx["mac_data"]
        algorithm = mac_data["mac"]["digest_algorithm"]["algorithm"].native
        iterations = mac_data["iterations"].native
        salt = mac_data["mac_salt"].native
        old = mac_data["mac"]["digest"].native
        content = pfx["auth_safe"]["content"].native
        if not 0 < iterations <= MAX_MAC_ITERATIONS or algorithm not in ("sha1", "sha256"):
            return data
        key = pkcs12_kdf(
            algorithm, password, salt, iterations, 3, hashlib.new(algorithm).digest_size
        )
        new = hmac.new(key, content, algorithm).digest()
    except Exception:  # a mutant asn1crypto cannot read keeps its MAC
        return data
    return data.replace(old, new, 1) if len(old) == len(new) else data


def pkcs12_kdf(
    algorithm: str, password: str, salt: bytes, iterations: int, purpose: int, length: int
) -> bytes:
    """RFC 7292 appendix B.2: the key derivation of PKCS#12 MACs (purpose 3)."""
    block = hashlib.new(algorithm).block_size
    secret = (password.encode("utf-16-be") + b"\0\0") if password else b""

    state = repeat_to_blocks(salt, block) + repeat_to_blocks(secret, block)
    output = b""
    while len(output) < length:
        digest = bytes([purpose]) * block + state
        for _ in range(iterations):
            digest = hashlib.new(algorithm, digest).digest()
        output += digest
        filler = (digest * (block // len(digest) + 1))[:block]
        adder = int.from_bytes(filler, "big") + 1
        state = b"".join(
            ((int.from_bytes(state[i : i + block], "big") + adder) % (1 << (8 * block))).to_bytes(
                block, "big"
            )
            for i in range(0, len(state), block)
        )
    return output[:length]


def repeat_to_blocks(value: bytes, block: int) -> bytes:
    """``value`` repeated to fill whole blocks (none for an empty value)."""
    if not value:
        return b""
    size = block * -(-len(value) // block)
    return (value * (size // len(value) + 1))[:size]


# --- Seeds and the trial -----------------------------------------------------------------------


def make_seeds() -> list[bytes]:
    seeds = []
    for kind in ("rsa2048", "ec256"):
        key = cached_key(kind, 7)
        certificate = make_certificate(key, f"Developer ID Application: Fuzz {kind}")
        ca_certificate, _ = fake_ca()
        for encoding in ("aes", "legacy", "3des"):
            chain = [ca_certificate] if encoding != "legacy" else []
            seeds.append(openssl_p12(certificate, key, PASSWORD, encoding, chain))
        seeds.append(unprotected_p12(certificate, key))
    return seeds


def import_identity(data: bytes, password: str) -> None:
    """What an import does with the file: read it, then take what the record keeps."""
    parsed = parse_p12(data, password)
    describe(parsed.certificate)
    parsed.private_key_der()
    for certificate in parsed.chain:
        certificate.public_bytes(serialization.Encoding.DER)


class P12Target:
    name = "p12"

    def __init__(self, seeds: list[bytes], limits: Limits):
        self.seeds = seeds
        self.limits = limits

    def make(self, rng: random.Random, folder) -> tuple[str, Callable[[], None]]:
        data = rng.choice(self.seeds)
        steps = []
        if rng.random() < 0.75:
            tree = read_der(data)[0]
            steps += [mutate_tree(rng, tree) for _ in range(rng.choice((1, 1, 2)))]
            data = tree.encode()
            if rng.random() < 0.8:
                data = recompute_mac(data, PASSWORD)
        if not steps or rng.random() < 0.2:
            layout = Layout([], [Region("file", 0, len(data))])
            data, more = mutate(rng, data, layout, 1)
            steps += more
        password = rng.choices([PASSWORD, "wrong", ""], weights=(8, 1, 1))[0]
        return f"{'; '.join(steps)} (password {password!r})", lambda: self.check(data, password)

    def check(self, data: bytes, password: str) -> None:
        outcome = run_engine(lambda: import_identity(data, password), self.limits, (P12Error,))
        expect_clean(outcome, self.limits, "identity import")
