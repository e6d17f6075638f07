"""Text for a terminal: names and descriptions with their control characters shown as escapes.

Standard library only: the command line's error path and the kernel exporter both use it.
"""

from __future__ import annotations

import re

# Characters that must not reach a terminal raw: C0 and C1 controls (ESC starts the sequences that
# move the cursor, recolour or retitle the terminal; U+009B is a one-character CSI), DEL, line and
# paragraph separators, the bidirectional overrides that reorder what is shown, and the surrogates
# that stand for undecodable bytes in file names.
TERMINAL_CONTROLS = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for the undecodable byte code - 0xDC00
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\n``), as ``ls`` and git show names.

    Every line convcli prints on a terminal goes through here, so a file name or a kernel
    description cannot move the cursor, clear the screen or split one message into two lines.

    >>> printable("a\\x1b[31mred\\nb.png")
    'a\\\\x1b[31mred\\\\nb.png'
    """
    return TERMINAL_CONTROLS.sub(_escape, str(text))
