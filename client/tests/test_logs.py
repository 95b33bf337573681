import logging

from signing_manager.logs import RedactSecrets

API_KEY = "smk_0123456789_abcDEF-ghi_jkl"
TOKEN = "smc_abcdef0123_XYZ_xyz-123"


def test_secrets_never_reach_the_log():
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "key %s token %s", (API_KEY, TOKEN), None
    )
    RedactSecrets().filter(record)
    message = record.getMessage()
    assert API_KEY not in message
    assert TOKEN not in message
    assert "smk_…redacted…" in message
