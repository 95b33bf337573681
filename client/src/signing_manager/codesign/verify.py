"""Checking a Mach-O file's embedded signature, ours or Apple's (reference section 9).

Per slice: LC_CODE_SIGNATURE at the end of ``__LINKEDIT``, which is last; the SuperBlob; for
every CodeDirectory (slot 0 and the alternates) ``codeLimit`` = the signature's offset, every
page hash recomputed, every bound special slot recomputed (Info.plist and CodeResources come
from the bundle when there is one); then the CMS: messageDigest = SHA-256 of the slot-0 CD, the
cdhash attributes against the CDs, the signer's signature over the signed attributes, and the
RFC 3161 timestamp if any. Apple writes its CMS in BER with indefinite lengths, which
asn1crypto reads as is; the signed attributes are checked on their original bytes.

Trust in the certificate chain and the requirements are judged afterwards (``assessment.py``).
"""

from __future__ import annotations

import datetime
import struct
from dataclasses import dataclass, field

from asn1crypto import cms
from cryptography import x509

from signing_manager.chains import complete_chain
from signing_manager.cms import (
    ASN1_ERRORS,
    first_attribute_values,
    verify_signer_info,
    verify_timestamp,
)
from signing_manager.codesign.blobs import BlobMagic, MalformedSignature, Slot, SuperBlob
from signing_manager.codesign.cdhashes import signed_cdhashes, signed_digests
from signing_manager.codesign.code_directory import (
    CodeDirectory,
    CodeDirectoryFlag,
    page_hashes,
)
from signing_manager.codesign.macho import MachO
from signing_manager.codesign.requirements import parse_requirements_set
from signing_manager.codesign.universal import is_universal, parse_universal
from signing_manager.errors import SigningManagerError

ALTERNATE_SLOTS = range(Slot.ALTERNATE_CODE_DIRECTORY, Slot.ALTERNATE_CODE_DIRECTORY + 5)
BLOB_SLOTS = {Slot.REQUIREMENTS, Slot.ENTITLEMENTS, Slot.ENTITLEMENTS_DER}


@dataclass
class SliceCheck:
    """What one architecture's signature holds, and what is wrong with it."""

    architecture: str
    signature_size: int = 0
    code_directories: list[tuple[int, CodeDirectory]] = field(default_factory=list)
    blobs: dict[int, bytes] = field(default_factory=dict)
    certificates: list[x509.Certificate] = field(default_factory=list)  # leaf first
    signing_time: datetime.datetime | None = None
    timestamp: datetime.datetime | None = None
    cms_digest: bytes | None = None  # the CMS's messageDigest: a hash of the slot-0 CD
    cms_digest_name: str | None = None  # its hash algorithm (sha256, ...)
    problems: list[str] = field(default_factory=list)

    @property
    def signed(self) -> bool:
        return bool(self.code_directories)

    @property
    def primary(self) -> CodeDirectory:
        return self.code_directories[0][1]

    @property
    def best(self) -> CodeDirectory:
        """The CD the kernel would use (highest-ranked hash)."""
        return max((cd for _, cd in self.code_directories), key=lambda cd: cd.hash_type.rank)

    @property
    def kind(self) -> str:
        flags = self.primary.flags
        if flags & CodeDirectoryFlag.LINKER_SIGNED:
            return "linker-signed"
        return "adhoc" if flags & CodeDirectoryFlag.ADHOC else "cms"

    @property
    def requirements(self) -> dict:
        data = self.blobs.get(Slot.REQUIREMENTS)
        return parse_requirements_set(data) if data else {}


def slices_of(data: bytes) -> list[MachO]:
    if is_universal(data):
        return [MachO.parse(piece.data) for piece in parse_universal(data)]
    return [MachO.parse(data)]


def check_macho(
    data: bytes, *, info_plist: bytes | None = None, resources: bytes | None = None
) -> list[SliceCheck]:
    """Every slice's signature checked; ``info_plist``/``resources`` are a bundle's files."""
    return [check_slice(macho, info_plist, resources) for macho in slices_of(data)]


def check_slice(macho: MachO, info_plist: bytes | None, resources: bytes | None) -> SliceCheck:
    result = SliceCheck(macho.architecture)
    command = macho.code_signature
    if command is None:
        result.problems.append("code object is not signed at all")
        return result
    result.signature_size = command.datasize
    try:
        macho.unsigned_end()
        entries = SuperBlob.parse(macho.signature_data, BlobMagic.EMBEDDED_SIGNATURE).entries
        result.code_directories = [
            (slot, CodeDirectory.parse(entries[slot]))
            for slot in (Slot.CODE_DIRECTORY, *ALTERNATE_SLOTS)
            if slot in entries
        ]
    except SigningManagerError as error:
        result.problems.append(str(error))
        return result
    if not result.code_directories:
        result.problems.append("the signature has no CodeDirectory")
        return result
    result.blobs = {slot: entries[slot] for slot in BLOB_SLOTS if slot in entries}
    bound = dict(result.blobs)
    bound[Slot.INFO_PLIST] = info_plist or macho.section_data("__TEXT", "__info_plist")
    bound[Slot.RESOURCES] = resources
    for _, directory in result.code_directories:
        check_code_directory(macho, directory, bound, result)
    check_signature(entries.get(Slot.SIGNATURE), result)
    return result


def check_code_directory(macho: MachO, directory: CodeDirectory, bound, result) -> None:
    name = directory.hash_type.hash_name
    if directory.code_limit != macho.code_signature.dataoff:
        result.problems.append(f"the {name} CodeDirectory does not end where the signature starts")
        return
    page_size = directory.page_size or max(directory.code_limit, 1)
    hashes = page_hashes(macho.data, directory.code_limit, page_size, directory.hash_type)
    if hashes != directory.code_hashes:
        changed = next(
            (
                n
                for n, pair in enumerate(zip(hashes, directory.code_hashes, strict=False))
                if len(set(pair)) > 1
            ),
            min(len(hashes), len(directory.code_hashes)),
        )
        result.problems.append(f"code page {changed} has been modified ({name})")
    for slot in BLOB_SLOTS:
        if bound.get(slot) is not None and slot > directory.special_slot_count:
            result.problems.append(f"special slot {slot} is present but not bound ({name})")
    for slot, recorded in directory.special_hashes.items():
        if not any(recorded):
            if slot in BLOB_SLOTS and bound.get(slot) is not None:
                result.problems.append(f"special slot {slot} is present but not bound ({name})")
            continue
        data = bound.get(slot)
        if data is None:
            result.problems.append(f"special slot {slot} is bound but its data is missing")
        elif directory.hash_type.digest(data) != recorded:
            result.problems.append(f"special slot {slot} has been modified ({name})")


def check_signature(wrapper: bytes | None, result: SliceCheck) -> None:
    if wrapper and struct.unpack_from(">I", wrapper)[0] != BlobMagic.BLOB_WRAPPER:
        result.problems.append("the CMS signature's wrapper is damaged")
        return
    content = wrapper[8:] if wrapper and len(wrapper) > 8 else b""
    if not content:
        if result.kind == "cms":
            result.problems.append("the signature is not ad-hoc, yet carries no CMS signature")
        return
    try:
        check_cms(content, result)
    except (*ASN1_ERRORS, MalformedSignature):  # asn1crypto parses lazily, so errors come late
        result.problems.append("the CMS signature is damaged")


def check_cms(content: bytes, result: SliceCheck) -> None:
    try:
        signed_data = cms.ContentInfo.load(content)["content"]
        signer_info = signed_data["signer_infos"][0]
        attributes = signer_info["signed_attrs"]
        certificates = [
            x509.load_der_x509_certificate(c.chosen.dump()) for c in signed_data["certificates"]
        ]
        cdhashes, digests = signed_cdhashes(attributes), signed_digests(attributes)
    except (*ASN1_ERRORS, MalformedSignature):
        result.problems.append("the CMS signature is damaged")
        return
    primary = result.primary.serialize()
    problem, signer = verify_signer_info(signed_data, signer_info, primary)
    if problem:
        result.problems.append(f"the CMS signature {problem}")
    directories = [cd for _, cd in result.code_directories]
    if cdhashes is not None and cdhashes != [cd.cdhash() for cd in directories]:
        result.problems.append("the signed cdhashes do not match the CodeDirectories")
    wanted = [(cd.hash_type.hash_name, cd.digest()) for cd in directories]
    if digests and sorted(digests) != sorted(wanted):
        result.problems.append("the signed CodeDirectory digests do not match")
    if signer:  # leaf first, then each issuer the signature carries, as Apple lists them
        result.certificates = [signer, *complete_chain(signer, certificates).issuers]
    else:
        result.certificates = certificates
    values = first_attribute_values(signer_info)
    if "message_digest" in values:
        result.cms_digest = values["message_digest"].native
        result.cms_digest_name = signer_info["digest_algorithm"]["algorithm"].native
    if "signing_time" in values:
        result.signing_time = values["signing_time"].native
    problem, result.timestamp = verify_timestamp(signer_info)
    if problem:
        result.problems.append(problem)
