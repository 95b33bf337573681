"""RFC 3161 timestamps for CMS signatures.

A time-stamping authority (TSA) signs the hash of a SignerInfo's signature value; the token it
returns goes into that SignerInfo's unsigned attributes as ``signature_time_stamp_token``
(RFC 3161, appendix A). Request: ``TimeStampReq`` over HTTP POST
(``application/timestamp-query``); reply: ``TimeStampResp`` (``application/timestamp-reply``).
"""

from __future__ import annotations

import hashlib
import os
import secrets

from asn1crypto import cms, tsp

from signing_manager.errors import SigningManagerError

APPLE_TSA = "http://timestamp.apple.com/ts01"
# The TSA a bare --timestamp asks, where Apple's cannot be reached (an offline build farm with
# its own TSA): build scripts then run unchanged.
TSA_ENV = "SIGNING_MANAGER_TSA_URL"
CONTENT_TYPE = "application/timestamp-query"
# Space to leave for a token with its certificates (Apple's are about 4.2 KB; productsign
# reserves 9216 bytes for a whole timestamped CMS).
TIMESTAMP_RESERVE = 8192


class TimestampError(SigningManagerError):
    pass


def timestamp_url(option: str | None) -> str | None:
    """The TSA a ``--timestamp[=URL]`` option names: None for ``none`` or no option; for the
    bare option, ``SIGNING_MANAGER_TSA_URL`` if set, else Apple's."""
    if option is None or option.lower() == "none":
        return None
    return option or os.environ.get(TSA_ENV) or APPLE_TSA


def imprint(signature: bytes) -> tsp.MessageImprint:
    return tsp.MessageImprint(
        {
            "hash_algorithm": {"algorithm": "sha256"},
            "hashed_message": hashlib.sha256(signature).digest(),
        }
    )


def request_timestamp(url: str, signature: bytes, transport=None) -> cms.ContentInfo:
    """A timestamp token over ``signature`` from the TSA at ``url``, checked to answer our
    request (same imprint, same nonce)."""
    import httpx  # here: it takes a tenth of a second to import, and most runs never need it

    nonce = secrets.randbits(63)
    request = tsp.TimeStampReq(
        {"version": "v1", "message_imprint": imprint(signature), "nonce": nonce, "cert_req": True}
    )
    try:
        with httpx.Client(timeout=30, transport=transport) as client:
            reply = client.post(url, content=request.dump(), headers={"Content-Type": CONTENT_TYPE})
    except httpx.HTTPError as error:
        raise TimestampError(f"Cannot reach the timestamp server {url}: {error}.") from None
    if reply.status_code != 200:
        raise TimestampError(f"The timestamp server {url} answered HTTP {reply.status_code}.")
    try:
        response = tsp.TimeStampResp.load(reply.content)
        status = response["status"]["status"].native
        token = response["time_stamp_token"]
        info = token["content"]["encap_content_info"]["content"].parsed
    except (ValueError, KeyError, TypeError):
        raise TimestampError(f"The timestamp server {url} sent no valid reply.") from None
    if status not in ("granted", "granted_with_mods"):
        raise TimestampError(f"The timestamp server {url} refused: {status}.")
    if info["message_imprint"].dump() != imprint(signature).dump() or info["nonce"].native != nonce:
        raise TimestampError(f"The timestamp server {url} answered another request.")
    return token


def token_time(token: cms.ContentInfo):
    """When the TSA says it saw the signature."""
    return token["content"]["encap_content_info"]["content"].parsed["gen_time"].native
