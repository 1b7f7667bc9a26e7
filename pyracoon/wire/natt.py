"""Telling apart what arrives on the NAT-T port (RFC 3948 section 2, RFC 3947 section 4).

On UDP 4500 three things share the socket: IKE messages prefixed by the 4-byte
zero *non-ESP marker*, NAT keepalives (a single 0xFF byte) and, if the kernel
did not take it, UDP-encapsulated ESP (a non-zero SPI first).  On UDP 500
there is no marker.  This module only classifies bytes; which port a datagram
came in on is the caller's knowledge.
"""

from __future__ import annotations

import enum

NON_ESP_MARKER = bytes(4)
KEEPALIVE = b"\xff"


class NattKind(enum.Enum):
    """What a datagram received on the NAT-T port is."""

    IKE = "ike"
    KEEPALIVE = "keepalive"
    ESP = "esp"


def classify_natt(datagram: bytes) -> tuple[NattKind, bytes]:
    """Classify a port-4500 datagram; for IKE, return it without the non-ESP marker."""
    if datagram == KEEPALIVE:
        return NattKind.KEEPALIVE, b""
    if datagram[:4] == NON_ESP_MARKER:
        return NattKind.IKE, bytes(datagram[4:])
    return NattKind.ESP, bytes(datagram)


def add_non_esp_marker(message: bytes) -> bytes:
    """Prefix an IKE message for sending on port 4500 (RFC 3948 2.2)."""
    return NON_ESP_MARKER + bytes(message)
