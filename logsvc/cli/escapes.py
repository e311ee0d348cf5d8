"""Backslash escapes in command-line strings: kcat's ``-D '\\0'``, ``-K '\\t'``, ``-f '%s\\n'``.

``\\n`` ``\\r`` ``\\t`` ``\\0`` ``\\\\`` and ``\\xHH`` (one byte); any other character is itself,
encoded as the filesystem encodes arguments (UTF-8, undecodable argument bytes kept).
"""

from __future__ import annotations

import os

import click

_SIMPLE = {"n": b"\n", "r": b"\r", "t": b"\t", "0": b"\0", "\\": b"\\"}


def unescape(text: str) -> bytes:
    """``text`` as bytes with its escapes decoded; ValueError naming a bad or unfinished escape."""
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\":
            j = text.find("\\", i)
            j = len(text) if j < 0 else j
            out += os.fsencode(text[i:j])
            i = j
            continue
        code = text[i + 1 : i + 2]
        if code in _SIMPLE:
            out += _SIMPLE[code]
            i += 2
        elif code == "x" and len(text) >= i + 4 and all(c in "0123456789abcdefABCDEF" for c in text[i + 2 : i + 4]):
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        else:
            shown = text[i : i + 4] if code == "x" else text[i : i + 2]
            raise ValueError(f"{shown!r} is not an escape: use \\n \\r \\t \\0 \\\\ or \\xHH")
    return bytes(out)


def option_bytes(text: str, option: str) -> bytes:
    """An option's value with its escapes decoded (``-D '\\0'``); a usage error naming ``option``."""
    try:
        return unescape(text)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=f"'{option}'") from None
