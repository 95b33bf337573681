"""Messages stay one line whatever a file name holds (found by fuzzing: a name with a newline
split an error over two lines; one with undecodable bytes failed the print)."""

from signing_manager.errors import one_line


def test_control_characters_are_escaped_and_letters_kept():
    assert one_line("Resources/new\nline\tis\x1b[31m é\u2028") == (
        "Resources/new\\nline\\tis\\x1b[31m é\\u2028"
    )


def test_undecodable_bytes_of_a_file_name_are_shown_not_raised():
    name = b"bad-\xff".decode("utf-8", "surrogateescape")
    assert one_line(f"{name} is a FIFO") == "bad-\\xff is a FIFO"
    one_line(name).encode("utf-8")  # printable on any UTF-8 stream


def test_anything_is_shown_as_its_text():
    assert one_line(KeyError("k")) == "'k'"
