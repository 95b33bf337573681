"""Signing Mach-O files (thin or universal): what ``codesign -s`` does to one file.

Procedure per slice (reference sections 2.2, 4 and 7; rcodesign ``macho_signing.rs``): the
signature goes where the old one was, or at the end of ``__LINKEDIT``, 16-aligned; its size is
fixed first (the CDs' sizes are known before hashing, the CMS is measured on a trial), so that
LC_CODE_SIGNATURE and ``__LINKEDIT`` can be written before page 0 is hashed. Then every page up
to the signature is hashed into a SHA-256 CodeDirectory (and a SHA-1 one first, in slot 0, when
the deployment target predates macOS 10.11.4), the special slots bind Info.plist, the
requirements, CodeResources and the entitlements, and a CMS signature with Apple's cdhash
attributes signs the primary CD.

Signing is split in two (``prepare`` then ``finish_all``) so that the CMS digests of many files
— a whole bundle — go to the service in one batch; each returned signature is verified by the
signer before anything is written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from signing_manager.cms import DetachedSignature
from signing_manager.codesign.blobs import BlobMagic, Slot, SuperBlob, blob
from signing_manager.codesign.cdhashes import cdhash_attributes
from signing_manager.codesign.code_directory import (
    EXEC_SEGMENT_VERSION,
    RUNTIME_VERSION,
    CodeDirectory,
    CodeDirectoryFlag,
    HashType,
    directory_flags,
    hash_pages,
)
from signing_manager.codesign.entitlements import (
    entitlements_blob,
    entitlements_der_blob,
    exec_segment_flags,
    load_entitlements,
)
from signing_manager.codesign.macho import FileType, MachO, Platform, round_up, version
from signing_manager.codesign.preserve import keep_metadata
from signing_manager.codesign.requirements import (
    RequirementType,
    developer_id_requirement,
    pinned_requirement,
    requirements_set,
)
from signing_manager.codesign.universal import Slice, fat_header, is_universal, universal_chunks
from signing_manager.codesign.universal import parse_universal as universal_slices
from signing_manager.errors import SigningManagerError
from signing_manager.timestamp import TIMESTAMP_RESERVE

PAGE_SIZE = 4096
CMS_SLACK = 512  # ECDSA signatures vary in length; a little room costs nothing
APPLE_ORGANIZATION = "Apple Inc."
DEVELOPER_ID_APPLICATION = "1.2.840.113635.100.6.1.13"
# SHA-256 CodeDirectories are understood from macOS 10.11.4 / iOS and tvOS 11 on (reference
# 4.4); for watchOS, as rcodesign does, always add the SHA-1 one.
SHA256_SINCE = {
    Platform.MACOS: version(10, 11, 4),
    Platform.IOS: version(11),
    Platform.TVOS: version(11),
    Platform.WATCHOS: 0xFFFFFFFF,
}


class AlreadySigned(SigningManagerError):
    pass


@dataclass(frozen=True)
class SigningOptions:
    identifier: str
    entitlements: bytes | None = None  # an XML property list, as given
    runtime: bool = False  # --options runtime
    flags: int = 0  # other CodeDirectory flags asked for (--options kill, library, ...)
    force: bool = False
    timestamp_url: str | None = None
    info_plist: bytes | None = None  # bound in special slot 1 (a bundle's main executable)
    resources: bytes | None = None  # _CodeSignature/CodeResources, special slot 3
    requirements: bytes | None = None  # a requirements set kept as it was (preserve.py)
    runtime_version: int | None = None  # kept as it was; else the SDK's, with runtime
    preserve: frozenset[str] = frozenset()  # --preserve-metadata items
    explicit: frozenset[str] = frozenset()  # items the command line gave (they win)


def team_identifier(certificate: x509.Certificate) -> str | None:
    """The Team ID (subject OU) of a certificate Apple issued; None for any other."""
    issuer = certificate.issuer.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    units = certificate.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)
    if not issuer or issuer[0].value != APPLE_ORGANIZATION or not units:
        return None
    return str(units[0].value)


def designated_requirement(identifier: str, signer):
    """Developer ID's designated requirement, or the certificate pinned by hash otherwise."""
    if signer is None:
        return None
    certificate = signer.certificate
    team = team_identifier(certificate)
    oids = {extension.oid.dotted_string for extension in certificate.extensions}
    if team and DEVELOPER_ID_APPLICATION in oids:
        return developer_id_requirement(identifier, team)
    root = signer.chain[-1] if signer.chain else None
    if root is not None and root.subject == root.issuer:
        return pinned_requirement(identifier, root.fingerprint(hashes.SHA1()), -1)  # noqa: S303
    return pinned_requirement(identifier, certificate.fingerprint(hashes.SHA1()), 0)  # noqa: S303


def hash_types(macho: MachO) -> list[HashType]:
    """SHA-256 alone, or SHA-1 first (slot 0) then SHA-256 for targets that predate it."""
    target = macho.target
    since = SHA256_SINCE.get(target.platform) if target else None
    if target is None or (since is not None and target.minimum < since):
        return [HashType.SHA1, HashType.SHA256]
    return [HashType.SHA256]


def first_slice(data: bytes) -> MachO:
    return MachO.parse(universal_slices(data)[0].data if is_universal(data) else data)


def uses_sha1(data: bytes) -> bool:
    """Whether signing ``data`` makes SHA-1 CodeDirectories (seals then record SHA-1 too)."""
    return HashType.SHA1 in hash_types(first_slice(data))


def existing_signature(macho: MachO) -> str | None:
    """``"linker-signed"``, ``"adhoc"``, ``"signed"`` or None, for the refusal message."""
    data = macho.signature_data
    if not data:
        return None
    try:
        entries = SuperBlob.parse(data, BlobMagic.EMBEDDED_SIGNATURE).entries
        flags = directory_flags(entries[Slot.CODE_DIRECTORY])
    except (SigningManagerError, KeyError):
        return "signed"
    if flags & CodeDirectoryFlag.LINKER_SIGNED:
        return "linker-signed"
    return "adhoc" if flags & CodeDirectoryFlag.ADHOC else "signed"


@dataclass
class PendingSlice:
    """One slice laid out (and, once ``hash`` ran, hashed), waiting for its CMS signature.

    The signed slice is ``head`` (its first pages, patched) + ``body`` (the rest of the input,
    untouched, never copied) + zeros up to ``offset`` + the signature, zero-padded to ``size``.
    Every byte's place is known before hashing, so the output can be written meanwhile.
    """

    head: bytearray
    body: memoryview
    offset: int
    size: int
    code_directories: list[tuple[int, CodeDirectory]]
    blobs: dict[int, bytes]
    signer: object
    cms: DetachedSignature | None = None

    @property
    def length(self) -> int:
        return self.offset + self.size

    @property
    def tail_start(self) -> int:
        return len(self.head) + len(self.body)

    def hash(self) -> None:
        """Every page into every CD; then the CMS to sign, which covers the primary CD."""
        pieces = [self.head, self.body, bytes(self.offset - self.tail_start)]
        for _, directory in self.code_directories:
            directory.code_hashes = hash_pages(pieces, self.offset, PAGE_SIZE, directory.hash_type)
        if self.signer is not None:
            self.cms = signature_of(self.signer, [cd for _, cd in self.code_directories])

    def superblob(self, signature: bytes | None, timestamp_url: str | None) -> bytes:
        entries = dict(self.blobs)
        for slot, directory in self.code_directories:
            entries[slot] = directory.serialize()
        content = b"" if self.cms is None else self.cms.finish(signature, timestamp_url)
        entries[Slot.SIGNATURE] = blob(BlobMagic.BLOB_WRAPPER, content)
        superblob = SuperBlob(BlobMagic.EMBEDDED_SIGNATURE, entries).serialize()
        if len(superblob) > self.size:
            raise SigningManagerError("The signature does not fit the space reserved for it.")
        return superblob

    def tail(self, superblob: bytes = b"") -> bytes:
        """Everything after the input's bytes: alignment, the signature, its padding."""
        gap = self.offset - self.tail_start
        return bytes(gap) + superblob + bytes(self.size - len(superblob))


@dataclass
class PendingMachO:
    """A whole file (one slice or several) waiting for its signatures."""

    slices: list[tuple[Slice, PendingSlice]]
    universal: bool
    timestamp_url: str | None = None

    def hash(self) -> None:
        for _, pending in self.slices:
            pending.hash()

    @property
    def requests(self):
        return [(p.cms.digest_to_sign, p.cms.algorithm) for _, p in self.slices if p.cms]

    def primary_code_directory(self) -> CodeDirectory:
        """The first slice's best-ranked CD: what a parent's CodeResources records."""
        directories = [cd for _, cd in self.slices[0][1].code_directories]
        return max(directories, key=lambda cd: cd.hash_type.rank)

    def tails(self, signatures: list[bytes]) -> list[bytes]:
        remaining = iter(signatures)
        return [
            pending.tail(pending.superblob(next(remaining) if pending.cms else None,
                                           self.timestamp_url))
            for _, pending in self.slices
        ]  # fmt: skip

    def chunks(self, tails: list[bytes] | None = None) -> list:
        """The file as buffers; without ``tails``, the signatures' places are zeros."""
        images = [
            (piece, [pending.head, pending.body, tail if tails else pending.tail()])
            for (piece, pending), tail in zip(self.slices, tails or self.slices, strict=True)
        ]
        return universal_chunks(images) if self.universal else images[0][1]

    def tail_positions(self) -> list[int]:
        """Where each slice's tail starts in the output file."""
        if not self.universal:
            return [self.slices[0][1].tail_start]
        _, starts = fat_header([(piece, pending.length) for piece, pending in self.slices])
        return [start + pending.tail_start for start, (_, pending) in zip(starts, self.slices,
                                                                          strict=True)]  # fmt: skip

    def finish(self, signatures: list[bytes]) -> list:
        """The signed file as a list of buffers."""
        return self.chunks(self.tails(signatures))


def lay_out(data, signer, options: SigningOptions) -> PendingMachO:
    """Lay out every slice of ``data`` (Mach-O or universal): where the signature goes, how
    big it is, what its CDs hold but the page hashes. ``signer`` is None for ad-hoc."""
    if is_universal(data):
        pieces, universal = universal_slices(data), True
    else:
        macho = MachO.parse(data)
        pieces, universal = [Slice(macho.cputype, macho.cpusubtype, data)], False
    pending = []
    for piece in pieces:
        macho = MachO.parse(piece.data)
        mine = keep_metadata(macho, options)
        entitlements = load_entitlements(mine.entitlements) if mine.entitlements else None
        pending.append((piece, lay_out_slice(macho, signer, mine, entitlements)))
    return PendingMachO(pending, universal, options.timestamp_url)


def prepare(data, signer, options: SigningOptions) -> PendingMachO:
    """Lay out and hash ``data``: ready for ``finish_all``; nothing is signed yet."""
    pending = lay_out(data, signer, options)
    pending.hash()
    return pending


def lay_out_slice(macho: MachO, signer, options: SigningOptions, entitlements) -> PendingSlice:
    kind = existing_signature(macho)
    if kind and kind != "linker-signed" and not options.force:
        described = "ad-hoc" if kind == "adhoc" else "with a certificate"
        raise AlreadySigned(
            f"The {macho.architecture} code is already signed ({described}); use -f to replace it."
        )
    offset = round_up(macho.unsigned_end(), 16)
    blobs = special_blobs(macho, signer, options, entitlements)
    directories = [
        (slot, code_directory(macho, hash_type, offset, options, blobs, signer, entitlements))
        for slot, hash_type in zip(
            (Slot.CODE_DIRECTORY, Slot.ALTERNATE_CODE_DIRECTORY), hash_types(macho), strict=False
        )
    ]
    size = reserved_size(directories, blobs, signer, options)
    head = macho.patched_head(offset, size)
    body = memoryview(macho.data)[len(head) : macho.unsigned_end()]
    return PendingSlice(head, body, offset, size, directories, blobs, signer)


def special_blobs(macho: MachO, signer, options: SigningOptions, entitlements) -> dict[int, bytes]:
    if options.requirements is not None:
        blobs = {Slot.REQUIREMENTS: options.requirements}
    else:
        requirement = designated_requirement(options.identifier, signer)
        requirements = {RequirementType.DESIGNATED: requirement} if requirement else {}
        blobs = {Slot.REQUIREMENTS: requirements_set(requirements)}
    if entitlements is not None:
        blobs[Slot.ENTITLEMENTS] = entitlements_blob(options.entitlements)
        if macho.filetype == FileType.EXECUTE:  # codesign's default since macOS 12
            blobs[Slot.ENTITLEMENTS_DER] = entitlements_der_blob(entitlements)
    return blobs


def code_directory(macho, hash_type, offset, options, blobs, signer, entitlements):
    """A CD with everything but the page hashes, which need the final layout."""
    specials = {slot: hash_type.digest(data) for slot, data in blobs.items()}
    info_plist = options.info_plist or macho.section_data("__TEXT", "__info_plist")
    if info_plist is not None:
        specials[Slot.INFO_PLIST] = hash_type.digest(info_plist)
    if options.resources is not None:
        specials[Slot.RESOURCES] = hash_type.digest(options.resources)
    text = macho.segment("__TEXT")
    flags = CodeDirectoryFlag(options.flags) | (0 if signer else CodeDirectoryFlag.ADHOC)
    if options.runtime:
        flags |= CodeDirectoryFlag.RUNTIME
    main_binary = macho.filetype == FileType.EXECUTE
    return CodeDirectory(
        identifier=options.identifier,
        hash_type=hash_type,
        code_limit=offset,
        page_size=PAGE_SIZE,
        code_hashes=[bytes(hash_type.size)] * (round_up(offset, PAGE_SIZE) // PAGE_SIZE),
        special_hashes=specials,
        flags=int(flags),
        version=RUNTIME_VERSION if options.runtime else EXEC_SEGMENT_VERSION,
        team_id=team_identifier(signer.certificate) if signer else None,
        exec_segment_base=text.fileoff if text else 0,
        exec_segment_limit=text.file_end if text else 0,
        exec_segment_flags=exec_segment_flags(entitlements or {}, main_binary),
        runtime=runtime_version(macho, options),
    )


def runtime_version(macho: MachO, options: SigningOptions) -> int:
    """The hardened runtime's version: kept, or the SDK the code was built with."""
    if not options.runtime:
        return 0
    if options.runtime_version is not None:
        return options.runtime_version
    return macho.target.sdk if macho.target else 0


def signature_of(signer, directories: list[CodeDirectory]) -> DetachedSignature:
    primary = hashlib.sha256(directories[0].serialize()).digest()
    return DetachedSignature(
        signer,
        primary,
        signer.default_algorithm(),
        extra_attributes=cdhash_attributes(directories),
    )


def reserved_size(directories, blobs, signer, options: SigningOptions) -> int:
    """The signature's exact size for ad-hoc; for a CMS, a trial one plus room to spare."""
    entries = dict(blobs)
    for slot, directory in directories:
        entries[slot] = directory.serialize()
    cms = b""
    if signer is not None:
        trial = signature_of(signer, [directory for _, directory in directories])
        cms = trial.finish(bytes(signer.certificate.public_key().key_size // 4 + 16))
        cms += bytes(CMS_SLACK + (TIMESTAMP_RESERVE if options.timestamp_url else 0))
    entries[Slot.SIGNATURE] = blob(BlobMagic.BLOB_WRAPPER, cms)
    return round_up(len(SuperBlob(BlobMagic.EMBEDDED_SIGNATURE, entries).serialize()), 16)


def sign_requests(pending: list[PendingMachO], signer) -> list[list[bytes]]:
    """Each file's CMS signatures, all asked of the signer in one batch."""
    requests = [request for item in pending for request in item.requests]
    signatures = iter(signer.sign_digests(requests) if requests and signer else [])
    return [[next(signatures) for _ in item.requests] for item in pending]


def finish_all(pending: list[PendingMachO], signer) -> list[list]:
    """Every file's signed bytes (as lists of buffers), signed in one batch."""
    signatures = sign_requests(pending, signer)
    return [item.finish(mine) for item, mine in zip(pending, signatures, strict=True)]


def sign_macho(data: bytes, signer, options: SigningOptions) -> bytes:
    """A signed copy of one Mach-O or universal file (``signer`` None: ad-hoc)."""
    return b"".join(finish_all([prepare(data, signer, options)], signer)[0])
