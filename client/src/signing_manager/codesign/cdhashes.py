"""Apple's CMS signed attributes that bind a signature to its CodeDirectories.

Reference section 7 (rcodesign ``signing.rs``; openradar-mirror#20365):

* 1.2.840.113635.100.9.1: one OCTET STRING holding an XML property list
  ``{"cdhashes": [<data>...]}`` with the 20-byte cdhash of every CD, primary first;
* 1.2.840.113635.100.9.2: one value per CD, ``SEQUENCE {digestAlgorithm OID, OCTET STRING}``
  with the CD's full, untruncated hash.

The CMS messageDigest is SHA-256 of the primary (slot 0) CD, whatever that CD's own hash is.
"""

from __future__ import annotations

import plistlib

from asn1crypto import algos, cms, core

from signing_manager.codesign.blobs import MalformedSignature
from signing_manager.codesign.code_directory import CodeDirectory
from signing_manager.codesign.plist import PlistError, read_plist

CDHASHES_PLIST = "1.2.840.113635.100.9.1"
CDHASHES_DIGESTS = "1.2.840.113635.100.9.2"


class CodeDirectoryDigest(core.Sequence):
    _fields = [("algorithm", algos.DigestAlgorithmId), ("digest", core.OctetString)]


def cdhash_attributes(code_directories: list[CodeDirectory]) -> list[dict]:
    """The two extra signed attributes for ``DetachedSignature``, CDs in slot order."""
    plist = plistlib.dumps({"cdhashes": [cd.cdhash() for cd in code_directories]})
    digests = [
        CodeDirectoryDigest({"algorithm": cd.hash_type.hash_name, "digest": cd.digest()})
        for cd in code_directories
    ]
    return [
        {"type": CDHASHES_PLIST, "values": [core.OctetString(plist)]},
        {"type": CDHASHES_DIGESTS, "values": digests},
    ]


def attribute_values(attributes: cms.CMSAttributes, oid: str) -> list:
    return [value for a in attributes if a["type"].dotted == oid for value in a["values"]]


def signed_cdhashes(attributes: cms.CMSAttributes) -> list[bytes] | None:
    """The cdhashes the 9.1 attribute names, or None when there is no such attribute."""
    values = attribute_values(attributes, CDHASHES_PLIST)
    if not values:
        return None
    try:
        plist = read_plist(core.OctetString.load(values[0].dump()).native, "The cdhashes list")
        return [bytes(item) for item in plist["cdhashes"]]
    except (PlistError, ValueError, KeyError, TypeError) as error:
        raise MalformedSignature(f"The cdhashes attribute is malformed ({error}).") from None


def signed_digests(attributes: cms.CMSAttributes) -> list[tuple[str, bytes]]:
    """``(hash name, full CD digest)`` pairs from the 9.2 attribute, in order."""
    pairs = []
    for value in attribute_values(attributes, CDHASHES_DIGESTS):
        try:
            parsed = CodeDirectoryDigest.load(value.dump())
            pairs.append((parsed["algorithm"].native, parsed["digest"].native))
        except ValueError as error:
            raise MalformedSignature(f"A CD digest attribute is malformed ({error}).") from None
    return pairs
