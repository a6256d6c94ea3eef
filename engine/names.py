"""Names that come from data and become parts of paths or messages: run ids, job ids, file names in a bundle.

A run id names the folder of its annotated images and its kept bundle, a job id its job folder; both can
arrive from outside (a bundle's manifest, a URL's ?job=, a command line), so each is checked against the one
shape the engine generates before it touches a path.
"""

from __future__ import annotations

import re
import time
import unicodedata
import uuid

from engine.config import BenchError

# What new_id() makes: 20261204-182008-20df88 (ASCII digits only: \d would also take other scripts' digits)
ID_PATTERN = re.compile(r"[0-9]{8}-[0-9]{6}-[0-9a-f]{6}", re.ASCII)
SHOWN_LENGTH = 60


def new_id() -> str:
    """A run's or a job's id: when it started, to the second, and six random hex digits."""
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def is_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def require_id(value: object, what: str = "run id") -> str:
    """The value when it has the engine's id shape; else a refusal that shows it safely."""
    if not is_id(value):
        raise BenchError(f"{shown(value)} is not a {what} (the engine's ids look like 20261204-182008-20df88)")
    return value  # type: ignore[return-value]


PLAIN = re.compile(r"[A-Za-z0-9_.+/-]+")


def shown(value: object, limit: int = SHOWN_LENGTH) -> str:
    """A value from outside as one short printable line: as it is where plain (letters, digits, . _ + - /, no ..),
    else quoted with control characters escaped; long ones cut."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit and PLAIN.fullmatch(text) and ".." not in text:
        return text
    quoted = repr(text)
    return quoted if len(quoted) <= limit else f"{quoted[:limit]}…' ({len(text)} characters)"


def one_line(text: str, limit: int = 300) -> str:
    """A message made of outside text (a database error quoting a value, say) as one line of bounded length."""
    flat = " ".join("".join(c if unicodedata.category(c)[0] != "C" else " " for c in str(text)).split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def is_plain_file_name(name: str, max_bytes: int = 255) -> bool:
    """One path component a folder can hold as it is: not empty, not . or .., no separator, no control
    character, at most max_bytes in UTF-8 (a file system's limit). Letters of any script are fine: an image's
    name is the user's photo's."""
    return (
        bool(name)
        and name not in (".", "..")
        and "/" not in name
        and "\\" not in name
        and not any(unicodedata.category(c)[0] == "C" for c in name)
        and len(name.encode("utf-8", "surrogatepass")) <= max_bytes
    )
