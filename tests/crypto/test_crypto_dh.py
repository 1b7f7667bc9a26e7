"""Oakley groups and Diffie-Hellman: primes, agreement, padding, peer-value validation.

Independent checks:
* every MODP prime is re-derived from its defining formula in RFC 2409 section 6 / RFC 3526
  (``p = 2^n - 2^(n-64) - 1 + 2^64 * (floor(2^(n-130) * pi) + k)``), with pi computed here by
  Machin's formula;
* the MODP shared secret is cross-checked against Python's pow() (test only);
* ECP groups use the RFC 5903 section 8.1 (P-256) and 8.2 (P-384) test vectors.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from pyracoon.crypto.dh import EcpKeyPair, ModpKeyPair, generate_keypair, validate_public_value
from pyracoon.crypto.errors import InvalidPublicValue, UnknownAlgorithm, UnsupportedAlgorithm
from pyracoon.crypto.groups import GROUPS, GroupKind, group_by_id, group_by_name

# group id -> (n bits, k) from RFC 2409 sections 6.1/6.2 and RFC 3526 sections 2-7
MODP_DEFINITIONS = {
    1: (768, 149686),
    2: (1024, 129093),
    5: (1536, 741804),
    14: (2048, 124476),
    15: (3072, 1690314),
    16: (4096, 240904),
    17: (6144, 929484),
    18: (8192, 4743158),
}


def _arctan_inverse(x: int, one: int) -> int:
    total = term = one // x
    n, sign = 1, -1
    while term:
        term //= x * x
        total += sign * (term // (2 * n + 1))
        sign, n = -sign, n + 1
    return total


def _pi_times_2_pow(bits: int) -> int:
    """floor(pi * 2^bits) by Machin's formula with 64 guard bits."""
    one = 1 << (bits + 64)
    return (16 * _arctan_inverse(5, one) - 4 * _arctan_inverse(239, one)) >> 64


@pytest.mark.parametrize("group_id", sorted(MODP_DEFINITIONS))
def test_modp_prime_matches_rfc_formula(group_id: int) -> None:
    n, k = MODP_DEFINITIONS[group_id]
    expected = 2**n - 2 ** (n - 64) - 1 + 2**64 * (_pi_times_2_pow(n - 130) + k)
    group = group_by_id(group_id)
    assert group.kind is GroupKind.MODP
    assert group.prime == expected
    assert group.generator == 2
    assert group.public_length == n // 8 == group.shared_secret_length


def test_group_names_and_numbers() -> None:
    assert group_by_name("modp1024").group_id == 2
    assert group_by_name("MODP2048").group_id == 14
    assert group_by_name("18").group_id == 18
    assert group_by_name(5).group_id == 5
    assert group_by_name("ecp256").group_id == 19
    with pytest.raises(UnknownAlgorithm) as excinfo:
        group_by_name("modp999")
    assert excinfo.value.key == "name"
    with pytest.raises(UnknownAlgorithm):
        group_by_id(22)
    assert {g.group_id for g in GROUPS.values() if g.supported} == {
        1, 2, 5, 14, 15, 16, 17, 18, 19, 20, 21
    }  # fmt: skip


@pytest.mark.parametrize("group_id", [1, 2, 5, 14, 15, 16, 17, 18, 19, 20, 21])
def test_both_sides_agree_and_values_are_padded(group_id: int) -> None:
    group = group_by_id(group_id)
    a, b = generate_keypair(group_id), generate_keypair(group)
    assert len(a.public_value) == len(b.public_value) == group.public_length
    secret = a.compute_shared_secret(b.public_value)
    assert secret == b.compute_shared_secret(a.public_value)
    assert len(secret) == group.shared_secret_length
    if group.kind is GroupKind.ECP:
        assert len(secret) * 2 == group.public_length


@pytest.mark.parametrize("group_id", [1, 2, 14])
def test_modp_secret_matches_pow(group_id: int) -> None:
    """Cross-check OpenSSL's result with plain modular exponentiation (test-only pow)."""
    group = group_by_id(group_id)
    a, b = generate_keypair(group_id), generate_keypair(group_id)
    assert isinstance(a, ModpKeyPair) and isinstance(b, ModpKeyPair)
    assert group.prime is not None
    y_b = int.from_bytes(b.public_value, "big")
    assert int.from_bytes(a.public_value, "big") == pow(2, a.private_value, group.prime)
    expected = pow(y_b, a.private_value, group.prime).to_bytes(group.public_length, "big")
    assert a.compute_shared_secret(b.public_value) == expected


# RFC 5903 section 8.1 (256-bit random ECP group) and 8.2 (384-bit)
RFC5903 = [
    (19,
     "C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433",
     "DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180"
     "5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3",
     "C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53",
     "D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63"
     "56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB",
     "D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE"),
    (20,
     "099F3C7034D4A2C699884D73A375A67F7624EF7C6B3C0F160647B67414DCE655"
     "E35B538041E649EE3FAEF896783AB194",
     "667842D7D180AC2CDE6F74F37551F55755C7645C20EF73E31634FE72B4C55EE6"
     "DE3AC808ACB4BDB4C88732AEE95F41AA9482ED1FC0EEB9CAFC4984625CCFC23F"
     "65032149E0E144ADA024181535A0F38EEB9FCFF3C2C947DAE69B4C634573A81C",
     "41CB0779B4BDB85D47846725FBEC3C9430FAB46CC8DC5060855CC9BDA0AA2942"
     "E0308312916B8ED2960E4BD55A7448FC",
     "E558DBEF53EECDE3D3FCCFC1AEA08A89A987475D12FD950D83CFA41732BC509D"
     "0D1AC43A0336DEF96FDA41D0774A3571DCFBEC7AACF3196472169E838430367F"
     "66EEBE3C6E70C416DD5F0C68759DD1FFF83FA40142209DFF5EAAD96DB9E6386C",
     "11187331C279962D93D604243FD592CB9D0A926F422E47187521287E7156C5C4"
     "D603135569B9E9D09CF5D4A270F59746"),
]  # fmt: skip


@pytest.mark.parametrize("group_id,i,g_i,r,g_r,g_ir_x", RFC5903)
def test_ecp_rfc5903_vectors(group_id, i, g_i, r, g_r, g_ir_x) -> None:
    initiator = EcpKeyPair.from_private_value(group_id, int(i, 16))
    responder = EcpKeyPair.from_private_value(group_id, int(r, 16))
    assert initiator.public_value == bytes.fromhex(g_i)  # x | y, no 0x04
    assert responder.public_value == bytes.fromhex(g_r)
    assert initiator.compute_shared_secret(bytes.fromhex(g_r)) == bytes.fromhex(g_ir_x)
    assert responder.compute_shared_secret(bytes.fromhex(g_i)) == bytes.fromhex(g_ir_x)


def test_modp_peer_value_wrong_length() -> None:
    a = generate_keypair(2)
    with pytest.raises(InvalidPublicValue) as excinfo:
        a.compute_shared_secret(a.public_value + b"\x00")
    err = excinfo.value
    assert (err.group, err.expected_length, err.actual_length, err.field) == (2, 128, 129, "KE")
    with pytest.raises(InvalidPublicValue):
        a.compute_shared_secret(a.public_value[1:])


def test_modp_short_value_padded_only_when_allowed() -> None:
    """racoon's oakley_check_dh_pub left-pads a short value; strict by default here."""
    group = group_by_id(2)
    assert group.prime is not None
    short = (2**1000 + 12345).to_bytes(126, "big")
    with pytest.raises(InvalidPublicValue):
        validate_public_value(2, short)
    assert validate_public_value(2, short, allow_short=True) == b"\x00\x00" + short
    a = generate_keypair(2)
    assert isinstance(a, ModpKeyPair)
    expected = pow(int.from_bytes(short, "big"), a.private_value, group.prime)
    assert a.compute_shared_secret(short, allow_short=True) == expected.to_bytes(128, "big")


@pytest.mark.parametrize("value", [0, 1, "p-1", "p", "p+1"])
def test_modp_peer_value_out_of_range(value) -> None:
    group = group_by_id(14)
    assert group.prime is not None
    y = {"p-1": group.prime - 1, "p": group.prime, "p+1": group.prime + 1}.get(value, value)
    data = (y % 2 ** (8 * group.public_length)).to_bytes(group.public_length, "big")
    with pytest.raises(InvalidPublicValue) as excinfo:
        generate_keypair(14).compute_shared_secret(data)
    assert excinfo.value.reason == "is outside 2..p-2"


def test_ecp_point_not_on_curve() -> None:
    a = generate_keypair(19)
    bad = bytearray(a.public_value)
    bad[-1] ^= 1
    with pytest.raises(InvalidPublicValue) as excinfo:
        a.compute_shared_secret(bytes(bad))
    assert excinfo.value.reason == "is not a point on the curve"
    with pytest.raises(InvalidPublicValue):
        a.compute_shared_secret(bytes(64))  # all-zero is not on P-256
    with pytest.raises(InvalidPublicValue) as excinfo:
        a.compute_shared_secret(a.public_value[:32])  # x alone: wrong length
    assert excinfo.value.expected_length == 64


def test_ec2n_groups_are_known_but_refused() -> None:
    assert group_by_id(3).kind is GroupKind.EC2N
    with pytest.raises(UnsupportedAlgorithm) as excinfo:
        generate_keypair(3)
    assert excinfo.value.field == "group_description"
    with pytest.raises(UnsupportedAlgorithm):
        EcpKeyPair.from_private_value(2, 5)


def test_no_deprecation_warning_escapes() -> None:
    """cryptography 50 deprecates FFDH; dh.py must keep that warning to itself."""
    code = (
        "import warnings; warnings.simplefilter('error');"
        "from pyracoon.crypto.dh import generate_keypair;"
        "a = generate_keypair(2); b = generate_keypair(2);"
        "assert a.compute_shared_secret(b.public_value)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
