"""Reading property lists that come from files we sign or check.

plistlib raises many kinds of errors on damaged input (``InvalidFileException``, expat's
``ExpatError``, ``ValueError``, ``AttributeError`` for a bad date, ``OverflowError``, ...); here
they all become one ``PlistError`` whose message callers put in front of a user.
"""

from __future__ import annotations

import plistlib
from xml.parsers.expat import ExpatError

from signing_manager.errors import SigningManagerError

PLIST_ERRORS = (
    plistlib.InvalidFileException,
    ExpatError,
    ValueError,
    TypeError,
    AttributeError,
    OverflowError,
    KeyError,
    IndexError,
    RecursionError,
    LookupError,  # an XML declaration naming an encoding that does not exist
)


class PlistError(SigningManagerError):
    pass


def read_plist(data: bytes, what: str) -> object:
    """The property list in ``data`` (XML or binary); ``what`` names it in the error."""
    try:
        return plistlib.loads(bytes(data))
    except PLIST_ERRORS as error:
        raise PlistError(f"{what} is not a readable property list ({error}).") from None
