"""Entitlements: the XML and DER entitlements blobs, and the executable-segment flags they imply.

Specified by xnu ``osfmk/kern/cs_blobs.h`` (blob magics, ``CS_EXECSEG_*``) and Apple's DER
entitlements as rcodesign writes them (``apple-codesign/src/plist_der.rs``, ``entitlements.rs``);
see ``reference/apple-signing-formats.md`` sections 4.3 and 6. Layout:

    XML blob   magic 0xFADE7171 | length u32 | the XML property list, byte for byte
    DER blob   magic 0xFADE7172 | length u32 | [APPLICATION 16] (0x70) { INTEGER 1, dict }
    dict       [CONTEXT 16] (0xB0) { SEQUENCE { UTF8String key, value } ... }, keys in
               ascending UTF-8 byte order
    value      dict | array = SEQUENCE { value ... } | BOOLEAN (00/FF) | INTEGER (minimal) |
               UTF8String; data, dates and reals cannot be encoded

DER lengths are definite and minimal.
"""

from __future__ import annotations

import datetime
import plistlib
from enum import IntEnum, IntFlag

from asn1crypto.core import Boolean, Integer, UTF8String

from signing_manager.codesign.blobs import BlobMagic, MalformedSignature, blob
from signing_manager.errors import SigningManagerError

# Apple reads entitlement integers as 64-bit signed values.
_INT64 = range(-(2**63), 2**63)
# Far beyond any real entitlements; it keeps hostile nesting from exhausting the stack.
_MAX_DEPTH = 64


class EntitlementsError(SigningManagerError):
    """Entitlements that cannot be read or cannot be put into a signature."""


class DerTag(IntEnum):
    BOOLEAN = 0x01
    INTEGER = 0x02
    UTF8_STRING = 0x0C
    SEQUENCE = 0x30
    ENTITLEMENTS = 0x70  # [APPLICATION 16], constructed
    DICTIONARY = 0xB0  # [CONTEXT 16], constructed


class ExecSegmentFlag(IntFlag):
    MAIN_BINARY = 0x1
    ALLOW_UNSIGNED = 0x10
    DEBUGGER = 0x20
    JIT = 0x40
    SKIP_LV = 0x80
    CAN_LOAD_CDHASH = 0x100
    CAN_EXEC_CDHASH = 0x200


_FLAG_ENTITLEMENTS = {
    "get-task-allow": ExecSegmentFlag.ALLOW_UNSIGNED,
    "run-unsigned-code": ExecSegmentFlag.ALLOW_UNSIGNED,
    "com.apple.private.cs.debugger": ExecSegmentFlag.DEBUGGER,
    "dynamic-codesigning": ExecSegmentFlag.JIT,
    "com.apple.private.skip-library-validation": ExecSegmentFlag.SKIP_LV,
    "com.apple.private.amfi.can-load-cdhash": ExecSegmentFlag.CAN_LOAD_CDHASH,
    "com.apple.private.amfi.can-execute-cdhash": ExecSegmentFlag.CAN_EXEC_CDHASH,
}

_UNENCODABLE = {bytes: "data", datetime.datetime: "a date", float: "a real"}


def load_entitlements(xml: bytes) -> dict:
    """The entitlements of an XML property list whose root is a dictionary."""
    try:
        entitlements = plistlib.loads(xml, fmt=plistlib.FMT_XML)
    except Exception as error:  # plistlib raises a variety of undocumented errors
        raise EntitlementsError(
            f"The entitlements cannot be read ({error}): they must be an XML property list "
            "whose root is a dictionary."
        ) from error
    if not isinstance(entitlements, dict):
        raise EntitlementsError(
            "The entitlements' root is not a dictionary: they must be an XML property list "
            "whose root is a dictionary."
        )
    return entitlements


def entitlements_blob(xml: bytes) -> bytes:
    """The XML entitlements blob (0xFADE7171): the property list exactly as given."""
    return blob(BlobMagic.ENTITLEMENTS, xml)


def entitlements_der_blob(entitlements: dict) -> bytes:
    """The DER entitlements blob (0xFADE7172)."""
    return blob(BlobMagic.ENTITLEMENTS_DER, der_entitlements(entitlements))


# -- encoding ---------------------------------------------------------------------------------


def _tlv(tag: int, content: bytes) -> bytes:
    if len(content) < 0x80:
        return bytes([tag, len(content)]) + content
    length = len(content).to_bytes((len(content).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _encode(value: object, path: tuple[str, ...]) -> bytes:
    if isinstance(value, dict):
        entries = sorted(value.items(), key=lambda item: item[0].encode())
        return _tlv(
            DerTag.DICTIONARY,
            b"".join(
                _tlv(DerTag.SEQUENCE, UTF8String(key).dump() + _encode(item, (*path, key)))
                for key, item in entries
            ),
        )
    if isinstance(value, list):
        return _tlv(
            DerTag.SEQUENCE,
            b"".join(_encode(item, (*path, str(index))) for index, item in enumerate(value)),
        )
    if isinstance(value, bool):  # before int: bool is an int
        return Boolean(value).dump()
    if isinstance(value, int):
        if value not in _INT64:
            raise EntitlementsError(
                f"The entitlement {'/'.join(path)} is an integer too large for a signature "
                "(at most 64 bits)."
            )
        return Integer(value).dump()
    if isinstance(value, str):
        return UTF8String(value).dump()
    kind = _UNENCODABLE.get(type(value), f"a {type(value).__name__}")
    raise EntitlementsError(
        f"The entitlement {'/'.join(path)} holds {kind}, which cannot be encoded as DER "
        "entitlements; use a string, integer, boolean, array or dictionary instead."
    )


def der_entitlements(entitlements: dict) -> bytes:
    """The DER form of entitlements, as codesign writes it since macOS 12."""
    return _tlv(DerTag.ENTITLEMENTS, Integer(1).dump() + _encode(entitlements, ()))


# -- decoding ---------------------------------------------------------------------------------


def _malformed(reason: str) -> MalformedSignature:
    return MalformedSignature(f"The DER entitlements are malformed: {reason}.")


def _read_tlv(data: bytes, position: int) -> tuple[int, bytes, int]:
    """``(tag, content, position after it)`` of the element at ``position``."""
    if len(data) - position < 2:
        raise _malformed("an element is cut short")
    tag, first = data[position], data[position + 1]
    position += 2
    if first < 0x80:
        length = first
    else:
        size = first & 0x7F
        raw = data[position : position + size]
        position += size
        # DER: definite (not 0x80), no longer than needed, and the short form below 128
        if size == 0 or len(raw) < size or raw[0] == 0:
            raise _malformed("an element has an invalid length")
        length = int.from_bytes(raw, "big")
        if length < 0x80:
            raise _malformed("an element has an invalid length")
    if length > len(data) - position:
        raise _malformed("an element is cut short")
    return tag, data[position : position + length], position + length


def _elements(content: bytes) -> list[tuple[int, bytes]]:
    elements, position = [], 0
    while position < len(content):
        tag, value, position = _read_tlv(content, position)
        elements.append((tag, value))
    return elements


def _decode(tag: int, content: bytes, depth: int) -> object:
    if depth > _MAX_DEPTH:
        raise _malformed(f"values nest deeper than {_MAX_DEPTH} levels")
    match tag:
        case DerTag.DICTIONARY:
            return _decode_dict(content, depth)
        case DerTag.SEQUENCE:
            return [_decode(*element, depth + 1) for element in _elements(content)]
        case DerTag.BOOLEAN:
            if content not in (b"\x00", b"\xff"):
                raise _malformed("a boolean is neither 00 nor FF")
            return content == b"\xff"
        case DerTag.INTEGER:
            # minimal two's complement: no redundant leading 00 or FF byte
            redundant = len(content) > 1 and (content[0], content[1] >> 7) in ((0, 0), (0xFF, 1))
            if not content or redundant or len(content) > 8:
                raise _malformed("an integer is not a minimal 64-bit integer")
            return int.from_bytes(content, "big", signed=True)
        case DerTag.UTF8_STRING:
            try:
                return content.decode("utf-8")
            except UnicodeDecodeError:
                raise _malformed("a string is not UTF-8") from None
    raise _malformed(f"an element has the unexpected tag {tag:#04x}")


def _decode_dict(content: bytes, depth: int) -> dict:
    result = {}
    previous = None
    for tag, entry in _elements(content):
        fields = _elements(entry) if tag == DerTag.SEQUENCE else []
        if len(fields) != 2 or fields[0][0] != DerTag.UTF8_STRING:
            raise _malformed("a dictionary entry is not a SEQUENCE of a key and a value")
        (_, raw_key), value = fields
        key = _decode(DerTag.UTF8_STRING, raw_key, depth)
        if previous is not None and raw_key <= previous:
            raise _malformed(f"the key {key!r} is out of order or repeated")
        previous = raw_key
        result[key] = _decode(*value, depth + 1)
    return result


def parse_der_entitlements(der: bytes) -> dict:
    """The entitlements held in DER form (the inverse of ``der_entitlements``)."""
    tag, content, end = _read_tlv(der, 0)
    if tag != DerTag.ENTITLEMENTS or end != len(der):
        raise _malformed("they are not one [APPLICATION 16] element")
    elements = _elements(content)
    if len(elements) != 2 or elements[0] != (DerTag.INTEGER, b"\x01"):
        raise _malformed("they lack the version 1 and a single root value")
    if elements[1][0] != DerTag.DICTIONARY:
        raise _malformed("their root is not a dictionary")
    return _decode_dict(elements[1][1], 1)


# -- executable segment flags -----------------------------------------------------------------


def exec_segment_flags(entitlements: dict, main_binary: bool) -> ExecSegmentFlag:
    """The CodeDirectory's execSegFlags: MAIN_BINARY and what entitlements set to true imply;
    nothing for anything but a main executable (MH_EXECUTE)."""
    if not main_binary:
        return ExecSegmentFlag(0)
    flags = ExecSegmentFlag.MAIN_BINARY
    for key, flag in _FLAG_ENTITLEMENTS.items():
        if entitlements.get(key) is True:
            flags |= flag
    return flags
