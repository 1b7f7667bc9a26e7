"""Padding of encrypted ISAKMP messages, the racoon way (racoon.conf ``padding {}`` section,
racoon.conf(5): padding, ``oakley_padlen`` / ``oakley_do_encrypt`` / ``oakley_do_decrypt``).

RFC 2408 section 3.5 leaves the pad contents open and RFC 2409 appendix B only asks for a whole
number of blocks.  racoon's rules, reproduced here:

* ``padlen = block - (len mod block)``: always 1..block bytes, never 0, so a body that is
  already block aligned gets a whole extra block;
* with ``randomize_length``, ``(rand % (maximum_length + 1) + 1) * block`` more bytes;
* pad bytes are random (``randomize``, default on), otherwise zero;
* the last pad byte holds ``padlen - 1`` when ``exclusive_tail`` is on (the default), else
  ``padlen``;
* on receive the padding is left in place (the payload parser ignores trailing bytes) unless
  ``strict_check`` is on, in which case the length byte is trusted and checked.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from pyracoon.crypto.errors import InvalidPadding

__all__ = ["RACOON_DEFAULT_PADDING", "PaddingPolicy", "pad", "pad_length", "unpad"]


@dataclass(frozen=True)
class PaddingPolicy:
    """racoon.conf ``padding { }`` options, with racoon's defaults."""

    randomize: bool = True
    randomize_length: bool = False
    maximum_length: int = 20
    strict_check: bool = False
    exclusive_tail: bool = True


#: The policy racoon uses when racoon.conf has no ``padding`` section.
RACOON_DEFAULT_PADDING = PaddingPolicy()


def pad_length(
    length: int,
    block_size: int,
    policy: PaddingPolicy = RACOON_DEFAULT_PADDING,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> int:
    """How many pad bytes a ``length``-byte body gets (oakley_padlen)."""
    padlen = block_size - (length % block_size)  # 1..block, never 0
    if policy.randomize_length:
        rand = int.from_bytes(random_bytes(4), "big")
        padlen += (rand % (policy.maximum_length + 1) + 1) * block_size
    return padlen


def pad(
    body: bytes,
    block_size: int,
    policy: PaddingPolicy = RACOON_DEFAULT_PADDING,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """``body`` followed by its padding, ready for CBC encryption."""
    padlen = pad_length(len(body), block_size, policy, random_bytes)
    filler = random_bytes(padlen - 1) if policy.randomize else bytes(padlen - 1)
    tail = padlen - 1 if policy.exclusive_tail else padlen
    return body + filler + bytes([tail & 0xFF])


def unpad(plaintext: bytes, policy: PaddingPolicy = RACOON_DEFAULT_PADDING) -> bytes:
    """The decrypted body, stripped of its padding only when ``strict_check`` is on."""
    if not policy.strict_check or not plaintext:
        return plaintext
    padlen = plaintext[-1] + (1 if policy.exclusive_tail else 0)
    if padlen == 0 or padlen > len(plaintext):
        raise InvalidPadding(plaintext[-1], len(plaintext), len(plaintext) - 1)
    return plaintext[:-padlen]
