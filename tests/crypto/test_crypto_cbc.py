"""Ciphers, racoon's padding rules and the CBC state of ISAKMP encryption.

Cipher known answers (single-block vectors are CBC with a zero IV = ECB):
* DES: FIPS 81 appendix C, CBC example ("Now is the time for all ").
* AES: RFC 3602 section 4, cases #1 and #2.
* CAST-128: RFC 2144 appendix B.1 (128-, 80- and 40-bit keys).
* Blowfish: Schneier's published ECB test vectors (vectors.txt, first two entries).
* Camellia: RFC 3713 appendix A (128-bit key).
"""

from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyracoon.crypto.algorithms import CIPHERS
from pyracoon.crypto.cbc import CbcState
from pyracoon.crypto.ciphers import BlockCipher, ike_cipher, ike_key_length
from pyracoon.crypto.errors import (
    InvalidCiphertext,
    InvalidIV,
    InvalidKeyLength,
    InvalidPadding,
    StaleDecryption,
    UnsupportedAlgorithm,
)
from pyracoon.crypto.padding import PaddingPolicy, pad, pad_length, unpad
from pyracoon.crypto.prf import prf_for

h = bytes.fromhex

KATS = [
    # (source, cipher, key, iv, plaintext, ciphertext)
    ("FIPS 81 CBC", "des", "0123456789abcdef", "1234567890abcdef",
     "4e6f772069732074" "68652074696d6520" "666f7220616c6c20",
     "e5c7cdde872bf27c" "43e934008c389c0f" "683788499a7c05f6"),
    ("RFC 3602 case 1", "aes", "06a9214036b8a15b512e03d534120006",
     "3dafba429d9eb430b422da802c9fac41", "53696e676c6520626c6f636b206d7367",
     "e353779c1079aeb82708942dbe77181a"),
    ("RFC 3602 case 2", "aes", "c286696d887c9aa0611bbb3e2025a45a",
     "562e17996d093d28ddb3ba695a2e6f58",
     "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     "d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1"),
    ("RFC 2144 B.1 128-bit", "cast128", "0123456712345678234567893456789a",
     "0000000000000000", "0123456789abcdef", "238b4fe5847e44b2"),
    ("RFC 2144 B.1 80-bit", "cast128", "01234567123456782345",
     "0000000000000000", "0123456789abcdef", "eb6a711a2c02271b"),
    ("RFC 2144 B.1 40-bit", "cast128", "0123456712",
     "0000000000000000", "0123456789abcdef", "7ac816d16e9b302e"),
    ("Schneier vectors.txt #1", "blowfish", "0000000000000000",
     "0000000000000000", "0000000000000000", "4ef997456198dd78"),
    ("Schneier vectors.txt #2", "blowfish", "ffffffffffffffff",
     "0000000000000000", "ffffffffffffffff", "51866fd5b85ecb8a"),
    ("RFC 3713 A", "camellia", "0123456789abcdeffedcba9876543210",
     "00000000000000000000000000000000", "0123456789abcdeffedcba9876543210",
     "67673138549669730857065648eabe43"),
]  # fmt: skip


@pytest.mark.parametrize("source,name,key,iv,plaintext,ciphertext", KATS)
def test_cipher_known_answers(source, name, key, iv, plaintext, ciphertext) -> None:
    cipher = BlockCipher(CIPHERS.by("name", name), h(key))
    assert cipher.encrypt(h(iv), h(plaintext)) == h(ciphertext), source
    assert cipher.decrypt(h(iv), h(ciphertext)) == h(plaintext), source


def test_single_des_is_3des_with_equal_keys() -> None:
    key, iv, data = h("0123456789abcdef"), bytes(8), bytes(range(32))
    des = BlockCipher(CIPHERS.by("name", "des"), key)
    tdes = BlockCipher(CIPHERS.by("name", "3des"), key * 3)
    assert des.encrypt(iv, data) == tdes.encrypt(iv, data)


@pytest.mark.parametrize(
    "name,attribute,expected",
    [("3des", None, 24), ("des", None, 8), ("aes", None, 16), ("aes", 256, 32),
     ("blowfish", 448, 56), ("cast128", 40, 5), ("camellia", 192, 24)],
)  # fmt: skip
def test_ike_key_length(name: str, attribute: int | None, expected: int) -> None:
    assert ike_key_length(CIPHERS.by("name", name), attribute) == expected


@pytest.mark.parametrize("name,bits", [("aes", 160), ("3des", 128), ("blowfish", 36),
                                       ("cast128", 136), ("blowfish", 44)])  # fmt: skip
def test_bad_key_lengths(name: str, bits: int) -> None:
    with pytest.raises(InvalidKeyLength) as excinfo:
        ike_key_length(CIPHERS.by("name", name), bits)
    assert excinfo.value.bits == bits and excinfo.value.field == "key_length"
    if bits % 8 == 0:
        with pytest.raises(InvalidKeyLength):
            BlockCipher(CIPHERS.by("name", name), bytes(bits // 8))


def test_ciphers_without_implementation() -> None:
    with pytest.raises(UnsupportedAlgorithm):
        ike_cipher(2)  # idea
    with pytest.raises(UnsupportedAlgorithm):
        BlockCipher(CIPHERS.by("name", "null"), b"")
    assert ike_cipher(7).name == "aes"


def test_cipher_input_checks() -> None:
    cipher = BlockCipher(CIPHERS.by("name", "aes"), bytes(16))
    with pytest.raises(InvalidIV):
        cipher.encrypt(bytes(8), bytes(16))
    with pytest.raises(InvalidCiphertext) as excinfo:
        cipher.decrypt(bytes(16), bytes(20))
    assert (excinfo.value.length, excinfo.value.block_size) == (20, 16)
    with pytest.raises(InvalidCiphertext):
        cipher.decrypt(bytes(16), b"")


# ---------------------------------------------------------------- padding -------------------


def counting_random(n: int) -> bytes:
    """Deterministic stand-in for os.urandom."""
    return bytes(itertools.islice(itertools.cycle(range(1, 256)), n))


@given(length=st.integers(0, 200), block=st.sampled_from([8, 16]))
@settings(max_examples=200, deadline=None)
def test_pad_length_is_one_to_block_never_zero(length: int, block: int) -> None:
    padlen = pad_length(length, block)
    assert 1 <= padlen <= block
    assert (length + padlen) % block == 0


def test_aligned_body_gets_a_whole_block() -> None:
    padded = pad(bytes(16), 16, random_bytes=counting_random)
    assert len(padded) == 32
    assert padded[-1] == 15  # exclusive_tail: padlen - 1
    assert padded[16:31] == counting_random(15)  # random filler


def test_padding_options() -> None:
    body = b"x" * 13
    no_random = pad(body, 8, PaddingPolicy(randomize=False))
    assert no_random == body + bytes(2) + b"\x02"
    inclusive = pad(body, 8, PaddingPolicy(randomize=False, exclusive_tail=False))
    assert inclusive[-1] == 3


@given(rand=st.binary(min_size=4, max_size=4), maximum=st.integers(0, 40))
@settings(max_examples=100, deadline=None)
def test_randomize_length(rand: bytes, maximum: int) -> None:
    policy = PaddingPolicy(randomize_length=True, maximum_length=maximum)
    padlen = pad_length(5, 8, policy, random_bytes=lambda n: rand[:n])
    extra = (int.from_bytes(rand, "big") % (maximum + 1) + 1) * 8
    assert padlen == 3 + extra
    assert 8 < padlen + 5 <= (maximum + 2) * 8


@given(body=st.binary(max_size=80), block=st.sampled_from([8, 16]),
       exclusive=st.booleans())  # fmt: skip
@settings(max_examples=150, deadline=None)
def test_strict_check_strips_exactly_the_padding(body: bytes, block: int, exclusive: bool) -> None:
    policy = PaddingPolicy(strict_check=True, exclusive_tail=exclusive)
    assert unpad(pad(body, block, policy), policy) == body


def test_padding_kept_unless_strict_and_bad_padding_rejected() -> None:
    padded = pad(b"payload", 8)
    assert unpad(padded) == padded  # racoon default: not stripped
    with pytest.raises(InvalidPadding) as excinfo:
        unpad(b"\x00" * 15 + b"\xc8", PaddingPolicy(strict_check=True))
    assert (excinfo.value.pad_length, excinfo.value.offset) == (200, 15)
    with pytest.raises(InvalidPadding):
        unpad(b"\x00" * 7 + b"\x00", PaddingPolicy(strict_check=True, exclusive_tail=False))


# ---------------------------------------------------------------- CBC state -----------------

PRF = prf_for(2)


def pair(name: str = "aes", key_bytes: int = 16) -> tuple[CbcState, CbcState]:
    row = CIPHERS.by("name", name)
    cipher = BlockCipher(row, bytes(range(key_bytes)))
    g_xi, g_xr = b"\x01" * 128, b"\x02" * 128
    return (CbcState.for_phase1(cipher, PRF, g_xi, g_xr),
            CbcState.for_phase1(cipher, PRF, g_xi, g_xr))  # fmt: skip


def test_phase1_iv_is_plain_hash_truncated() -> None:
    initiator, _ = pair("3des", 24)
    assert initiator.iv == hashlib.sha1(b"\x01" * 128 + b"\x02" * 128).digest()[:8]


def test_chain_across_messages_in_both_directions() -> None:
    initiator, responder = pair()
    for i, (sender, receiver) in enumerate([(initiator, responder), (responder, initiator)] * 3):
        body = bytes([i]) * (10 + i)
        ciphertext = sender.encrypt(body)
        assert sender.iv == ciphertext[-16:]  # a sent message moves the chain at once
        decrypted = receiver.decrypt(ciphertext)
        assert decrypted.plaintext.startswith(body)
        receiver.commit(decrypted)
        assert receiver.iv == sender.iv


def test_receive_commits_only_when_asked() -> None:
    initiator, responder = pair()
    ciphertext = initiator.encrypt(b"hello")
    before = responder.iv
    decrypted = responder.decrypt(ciphertext)
    assert responder.iv == before and decrypted.next_iv == ciphertext[-16:]
    # a forged message is decrypted and dropped: the genuine one still decrypts afterwards
    responder.decrypt(bytes(32))
    responder.commit(responder.decrypt(ciphertext))
    assert responder.iv == initiator.iv
    with pytest.raises(StaleDecryption):
        responder.commit(decrypted)  # decrypted under an IV the state has left


def test_phase2_iv_from_last_phase1_block_and_message_id() -> None:
    initiator, responder = pair()
    initiator.encrypt(b"MM5")
    last_block = initiator.iv
    quick = initiator.for_message_id(PRF, 0x01020304)
    expected = hashlib.sha1(last_block + b"\x01\x02\x03\x04").digest()[:16]
    assert quick.iv == expected
    assert initiator.for_message_id(PRF, b"\x01\x02\x03\x04").iv == expected
    quick.encrypt(b"QM1")
    assert initiator.iv == last_block  # quick mode does not move the phase-1 chain
    assert initiator.for_message_id(PRF, 5).iv != expected


def test_strict_check_through_cbc_state() -> None:
    initiator, responder = pair()
    policy = PaddingPolicy(strict_check=True)
    assert responder.decrypt(initiator.encrypt(b"exact body", policy), policy).plaintext == (
        b"exact body"
    )


def test_state_rejects_bad_iv_length() -> None:
    with pytest.raises(InvalidIV):
        CbcState(BlockCipher(CIPHERS.by("name", "aes"), bytes(16)), bytes(8))
