"""URL converters shared by every app."""

from __future__ import annotations

# The largest value of a BigAutoField (a signed 64-bit integer).
MAX_ID = 2**63 - 1


class IdConverter:
    """A row id in a URL: digits whose value fits a database id column.

    Django's ``<int:…>`` accepts any number of digits, and a value past 2**63 - 1 reaches the
    database driver, which refuses it with an error (a 500). Out of range is simply "no such
    row": ``to_python`` raising ``ValueError`` makes the pattern not match, so the answer is 404.
    """

    regex = "[0-9]+"

    def to_python(self, value: str) -> int:
        # int() itself refuses more than 4,300 digits with ValueError: also a 404.
        number = int(value)
        if number > MAX_ID:
            raise ValueError("id out of range")
        return number

    def to_url(self, value: int) -> str:
        return str(int(value))
