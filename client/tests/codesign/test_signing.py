"""Signing Mach-O files: thin and universal, built and real, ad-hoc and with a CMS; every
output checked by openssl, llvm-objdump and our verifier."""

from __future__ import annotations

import pytest

from signing_manager.codesign.signing import SigningOptions, sign_macho
from signing_manager.codesign.verify import check_macho

BUILT = ["arm64-exe", "x86_64-exe", "x86_64-exe-10.9", "arm64-dylib", "x86_64-dylib",
         "arm64-bundle", "universal-exe", "universal-dylib"]  # fmt: skip
REAL = ["x86_64-thin", "arm64-thin", "universal2", "adhoc", "linker-signed",
        "universal2-adhoc-sha1", "universal2-execute", "cms"]  # fmt: skip


@pytest.mark.parametrize("name", BUILT + REAL)
def test_it_signs_with_a_developer_id_chain(
    name, machos, apple_signer, apple_root, independent, tmp_path
):
    data = machos.bytes(name)
    signed = sign_macho(
        data, apple_signer, SigningOptions(identifier="com.example.test", force=True)
    )
    checks = check_macho(signed)
    assert [c.problems for c in checks] == [[] for _ in checks]
    assert all(c.kind == "cms" for c in checks)
    assert independent.openssl_verifies(signed, apple_root) == len(checks)
    path = tmp_path / "signed"
    path.write_bytes(signed)
    assert len(independent.objdump_signature(path)) == len(checks)
