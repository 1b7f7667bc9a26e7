"""Known-answer tests of SKEYID, SKEYID_d/a/e, appendix-B expansion and quick-mode KEYMAT from
independent published vectors.

Sources (values copied verbatim, hex):

1. NIST CAVP SP 800-135 IKEv1 KDF vectors as quoted by libreswan:
   https://github.com/libreswan/libreswan/blob/main/programs/cavp/test.acvp.ikev1_psk.run
   (``[SHA-1]``, pre-shared-key case) and programs/cavp/test.acvp.ikev1_dsa.run (digital
   signature case; SKEYID = prf(Ni_b | Nr_b, g^xy)).  The expected JSON answers are in
   test.acvp.ikev1_psk.json / test.acvp.ikev1_dsa.json next to them.
2. NSS gtests: nss/gtests/common/testvectors/ike-sha1-vectors.h, ike-sha256-vectors.h and
   ike-sha384-vectors.h (https://hg.mozilla.org/projects/nss, mirrored at
   https://github.com/nss-dev/nss), run by gtests/pk11_gtest/pk11_ike_unittest.cc.  Entries 1-10
   are NIST samples, 11-16 are NSS's own (CKM_NSS_IKE1_APP_B_PRF_DERIVE: appendix B with
   ``K1 = prf(K, 0x00)``; "quick" mode: ``Kn = prf(K, Kn-1 | seed)`` with seed 0x00, i.e. the
   KEYMAT recurrence).  Field order in those files: id, type, ikm, gxykm, prevkm, okm, Ni, Nr,
   seed, key_number, size.
"""

from __future__ import annotations

import pytest

from pyracoon.crypto.keys import (
    derive_phase1_keys,
    encryption_key,
    keymat,
    skeyid_a,
    skeyid_d,
    skeyid_e,
    skeyid_psk,
    skeyid_sig,
)
from pyracoon.crypto.prf import Prf, prf_for

SHA1, SHA256, SHA384 = 2, 4, 5
h = bytes.fromhex


# ---- 1. NIST CAVP via libreswan programs/cavp -------------------------------------------------


def test_cavp_ikev1_psk_sha1() -> None:
    """libreswan programs/cavp/test.acvp.ikev1_psk.run, COUNT = 0 (tcId 100)."""
    prf = prf_for(SHA1)
    g_xy = h("739003ba2c11c982946c65e26acf661fbf8ebb78011a9fead79efa12fe3e71cc")
    skeyid = skeyid_psk(prf, h("75"), h("b9a2d0e922dc66dd"), h("2130166863b5ddef"))
    keys = derive_phase1_keys(prf, skeyid, g_xy, h("83d374c30b3b5082"), h("5afc0da06c728029"))
    assert keys.skeyid == h("62b04d112877e442fc3282fc37c076997718a0b9")
    assert keys.skeyid_d == h("369e5aad1bdb5faf6a3d929d500cdc236710a9ab")
    assert keys.skeyid_a == h("588e957d8d790d093b3a39f121473473af78e9bb")
    assert keys.skeyid_e == h("cd74b0c048219db81384d3fda8f6cda51e398a2b")


def test_cavp_ikev1_dsa_sha1() -> None:
    """libreswan programs/cavp/test.acvp.ikev1_dsa.run, COUNT = 0 (tcId 100)."""
    prf = prf_for(SHA1)
    g_xy = h("8ba4cbc73c0187301dc19a975823854dbd641c597f637f8d053a83b9514673eb")
    skeyid = skeyid_sig(prf, h("69a62284195f1680"), h("80c94ba25c8abda5"), g_xy)
    keys = derive_phase1_keys(prf, skeyid, g_xy, h("8c3bcd3a69831d7f"), h("d2d9a7ff4fbe95a7"))
    assert keys.skeyid == h("707197817fb2d90cf54d1842606bdea59b9f4823")
    assert keys.skeyid_d == h("384be709a8a5e63c3ed160cfe3921c4b37d5b32d")
    assert keys.skeyid_a == h("48b327575abe3adba0f279849e289022a13e2b47")
    assert keys.skeyid_e == h("a4a415c8e0c38c0da847c356cc61c24df8025560")


# ---- 2. NSS gtests/common/testvectors/ike-sha*-vectors.h --------------------------------------

# ikeGxy entries: okm = SKEYID = prf(Ni | Nr, g^xy)   (ikm = g^xy)
NSS_GXY = [
    # (file, id, hash, g^xy, SKEYID, Ni, Nr)
    ("ike-sha1-vectors.h", 1, SHA1,
     "8ba4cbc73c0187301dc19a975823854dbd641c597f637f8d053a83b9514673eb",
     "707197817fb2d90cf54d1842606bdea59b9f4823", "69a62284195f1680", "80c94ba25c8abda5"),
    ("ike-sha1-vectors.h", 6, SHA1,
     "4b2c1f971981a8ad8d0abeafabf38cf75fc8349c148142465ed9c8b516b8be52",
     "a9a7b222b59f8f48645f28a1db5b5f5d7479cba7", "32b50d5f4a3763f3", "9206a04b26564cb1"),
    ("ike-sha256-vectors.h", 1, SHA256,
     "a1ff3dc6cf9b4c04709943cb4ca1f1789bcf360b03f1d027de3ae8ee039e9155",
     "750c5c94b9c2ec20b68033e024dadf0fa87e8b48c6561b21c72478451a06583d",
     "b1dee62505b47b223bae14ce7a5b757402ad1587511618d09f94950d47f1d8d4ce86aca12"
     "d78db9854d86019ad735757ae79d8932ac0c7db842c85060150ca875ea5d47e3cfcb2a059"
     "22ebb7959d49b9797a2289676ee79a1d9a18b790f87e4771ddaf4be3376057a553162f68f"
     "e429aca73b07234543801ba2122b1bde82251770d05df813cf556a11ca4dc43ffcb85a97d"
     "bed16e2fda6985e07e31be6364899e63c507c7c616e5eb7765a53560f76772de43918ba07"
     "badfe85244dcdcd917cb065afb60e3b7e68b54dd94bfc7c31c8b752892781ed3cc4b7f28f"
     "bc0ab9af908f5ae1f09f893f80100a7b3135993161b51fbba3bbb24b9f88c6147de82cd6f"
     "0",
     "f0acfef2ad1f7add0eaafda78c1cf1097d9fc91cb04a7c145069ac426fd164cbe661b1dd2"
     "df0fb84e19512181f0d8ea50b7860845f332757a8e56d2a3b7be436b5718a2d49baa996a4"
     "616684a208c2d611cd65e605dca6e3d3f116859b4410fe13679696bb2e23c08a40c7e1316"
     "d54b4c9c0286701c221151b3642cb4112ca1a53e0e597a7e29c634caed86ca3c31973d37b"
     "4c346134fd6784cd99913feedf3d29d89a0a02a5a750f02f5738109dcc670bb27701fb59f"
     "78e83b76860c3fec079a1fc8c937ddb58ae7500422b7e49ce63759c65b6bc439381d56bcc"
     "159edede894b073841036ebfa050a5b3e7c876a3f18def26b1768a263ac66c9d83b680eb5"
     "e"),
    ("ike-sha256-vectors.h", 6, SHA256,
     "0f4d257d7a58fc4545c7d7a88119eee5d5c9690c5b4c989171d3abbfd99d1d29",
     "5f00d1bd2c58ec224b1e6b71fa0f19a1faa7a193952c444411b47c1a9d8ba6fe",
     "3f302be1abcb28e1", "8c332ee006064c9b"),
    ("ike-sha384-vectors.h", 1, SHA384,
     "1724dbd893523764bfef8c6fa927856fccfb77ae254358cce29c2769a32915c1",
     "6e4514610bf82d0ab7bf0260096f6146a153c712071abb633ced813c572156c783e36874a"
     "65a64690ca701d40d56ea18", "cec89d845add83ef", "cebd43ab71d17db9"),
    ("ike-sha384-vectors.h", 6, SHA384,
     "d3288cd87565101e88fe3bad918f31939d8dd26ff1071f8b2d7f447524e58d7c",
     "69fe7a1ac94adaeb711295f5fe004b1a8d6a0b65d05692758ce8ad2f7a45f59d7d0b596f5"
     "1f7dfcf3330061888f6a94f", "fd1b572a8e735591", "6013b0ef88dacd3d"),
]  # fmt: skip


@pytest.mark.parametrize("source,vid,hash_id,g_xy,expected,ni,nr", NSS_GXY)
def test_nss_skeyid_signature(source, vid, hash_id, g_xy, expected, ni, nr) -> None:
    assert skeyid_sig(prf_for(hash_id), h(ni), h(nr), h(g_xy)) == h(expected), (source, vid)


# ikeV1Psk entries: okm = SKEYID = prf(PSK, Ni | Nr)
NSS_PSK = [
    ("ike-sha1-vectors.h", 5, SHA1, "c0", "ab3be41bc62f2ef0c41a3076d58768be77fadd2e",
     "03a6f25a83c8c2a3", "9d958a6618f77e7f"),
    ("ike-sha256-vectors.h", 5, SHA256, "a0",
     "558a99b299773d267cf7c8ef073bf3b7af362c206c75a538403c5ef884d4cace",
     "ead9ced494868f41", "f1aff4f425a94f18"),
    ("ike-sha384-vectors.h", 5, SHA384, "9e",
     "b54fa27cb4251051e44a659d73591845691d11f1874bf4e4088e5df6462d28e57a3a2af3a"
     "b4f9b746a8f5766f8785f2b", "d6596b7e5b398534", "136fbdfa8d0ceb8e"),
]  # fmt: skip


@pytest.mark.parametrize("source,vid,hash_id,psk,expected,ni,nr", NSS_PSK)
def test_nss_skeyid_psk(source, vid, hash_id, psk, expected, ni, nr) -> None:
    assert skeyid_psk(prf_for(hash_id), h(psk), h(ni), h(nr)) == h(expected), (source, vid)


# ikeV1 entries 2-4: key_number 0/1/2 = SKEYID_d/a/e, prevkm = the previous key, Ni/Nr fields
# hold CKY-I/CKY-R.
NSS_CHILDREN = [
    # (file, hash, SKEYID, g^xy, CKY-I, CKY-R, SKEYID_d, SKEYID_a, SKEYID_e)
    ("ike-sha1-vectors.h", SHA1, "707197817fb2d90cf54d1842606bdea59b9f4823",
     "8ba4cbc73c0187301dc19a975823854dbd641c597f637f8d053a83b9514673eb",
     "8c3bcd3a69831d7f", "d2d9a7ff4fbe95a7",
     "384be709a8a5e63c3ed160cfe3921c4b37d5b32d",
     "48b327575abe3adba0f279849e289022a13e2b47",
     "a4a415c8e0c38c0da847c356cc61c24df8025560"),
    ("ike-sha256-vectors.h", SHA256,
     "750c5c94b9c2ec20b68033e024dadf0fa87e8b48c6561b21c72478451a06583d",
     "a1ff3dc6cf9b4c04709943cb4ca1f1789bcf360b03f1d027de3ae8ee039e9155",
     "6c6beb72631ddc3d", "b84e24b22cffbd14",
     "a4f7ca7de913814813e3312099e7c943bd293483f387532330237f1b20957310",
     "1d4b705746c43b0a6fcbb8db33983c0f24ff6f8b6543e3779fed227c6067f004",
     "03e6f16cd9ce9f64b5cdc5b34cca7163483ba5389a30afebef3d14640b0a815e"),
    ("ike-sha384-vectors.h", SHA384,
     "6e4514610bf82d0ab7bf0260096f6146a153c712071abb633ced813c572156c783e36874a"
     "65a64690ca701d40d56ea18",
     "1724dbd893523764bfef8c6fa927856fccfb77ae254358cce29c2769a32915c1",
     "1c8aba986a00af0f", "b049d9672f73c920",
     "b083234e9ed7745911f93eb31faa66fcf88906266830eb17ef166d295cb1f86a3543b8b8e"
     "fa5df918533df537e9c809c",
     "938295a374aceb4147a8024c9a007dd313403fd8fd7070dbd0cfbe1ccd308dbfbb7b9e9c6"
     "4049e4df44ff551016cb7b5",
     "8595b249dc1fa8599729f87eb6b9dd13bfbfdfd4f9ebd78929bab6ecc402539ad32cb6e7e"
     "f4ba6a0f53da14e4df07ed4"),
]  # fmt: skip


@pytest.mark.parametrize("source,hash_id,skeyid,g_xy,cky_i,cky_r,d,a,e", NSS_CHILDREN)
def test_nss_skeyid_children(source, hash_id, skeyid, g_xy, cky_i, cky_r, d, a, e) -> None:
    prf = prf_for(hash_id)
    key, gxy, ci, cr = h(skeyid), h(g_xy), h(cky_i), h(cky_r)
    assert skeyid_d(prf, key, gxy, ci, cr) == h(d)
    # each child is checked from the *published* previous key, as NSS does (prevkm)
    assert skeyid_a(prf, key, h(d), gxy, ci, cr) == h(a)
    assert skeyid_e(prf, key, h(a), gxy, ci, cr) == h(e)


# ikeV1AppB entries 11-13: appendix B expansion of ikm (= SKEYID_e) to `size` bytes.
NSS_APP_B = [
    ("ike-sha1-vectors.h", 11, SHA1, "63e81194946ebd05df7df5ebf5d8750056bf1f1d", 132,
     "933347a07de5782247dd36d1562ffe0eecade1eb4134165257e3af1000af8ae3f16506382"
     "8cbb60d910b7db38fa3c7f62c4afaaf3203da065c841729853edb23e9e7ac8286ae65c8cb"
     "6c667d79268c0bd6705abb9131698eb822b1c1f9dd142fc7be2c1010ee0152e10195add98"
     "999c6b6d42c8fe9c1b134d56ad5f2c6f20e815bd25c52"),
    ("ike-sha1-vectors.h", 12, SHA1, "63e81194946ebd05df7df5ebf5d8750056bf1f1d", 40,
     "933347a07de5782247dd36d1562ffe0eecade1eb4134165257e3af1000af8ae3f16506382"
     "8cbb60d"),
    ("ike-sha1-vectors.h", 13, SHA1, "63e81194946ebd05df7df5ebf5d8750056bf1f1d", 15,
     "63e81194946ebd05df7df5ebf5d875"),
    ("ike-sha256-vectors.h", 11, SHA256,
     "5f00d1bd2c58ec224b1e6b71fa0f19a1faa7a193952c444411b47c1a9d8ba6fe", 132,
     "b10fff32cbeaa1e7afe6ab0b191e0bd63cd524849a4b56019146d232a24cf9af6b89494d2"
     "a360b06825db8bb0324c15cecf47fc0bc99e39bf1171a7f4bf1733dc49ef64c642e73b054"
     "b2e82456e34fa3c822da475e27e403b3da3929da50e6aa9e7f9252c68fa069b4b0edd374e"
     "80d35378c4f5e8ec285a1b169c92bbb5353d05ba94165"),
    ("ike-sha256-vectors.h", 12, SHA256,
     "5f00d1bd2c58ec224b1e6b71fa0f19a1faa7a193952c444411b47c1a9d8ba6fe", 32,
     "5f00d1bd2c58ec224b1e6b71fa0f19a1faa7a193952c444411b47c1a9d8ba6fe"),
    ("ike-sha384-vectors.h", 11, SHA384,
     "69fe7a1ac94adaeb711295f5fe004b1a8d6a0b65d05692758ce8ad2f7a45f59d7d0b596f5"
     "1f7dfcf3330061888f6a94f", 132,
     "9b9a56a512cc2c5d5bcee66d03974f2701d4634b3241df132b1d2fd31fb23f003969dd787"
     "3425f771aae298871672cbfc908596c4d18165331b9fdff350cff787e700a140e123f2066"
     "d8d8527f53e701d23abdb3b0bc713109e33dc233c6989fa64b95720495c859505c5c7a748"
     "7778aab59365dafe60c7264ccde55829f60143a4bb095"),
    ("ike-sha384-vectors.h", 13, SHA384,
     "69fe7a1ac94adaeb711295f5fe004b1a8d6a0b65d05692758ce8ad2f7a45f59d7d0b596f5"
     "1f7dfcf3330061888f6a94f", 15, "69fe7a1ac94adaeb711295f5fe004b"),
]  # fmt: skip


@pytest.mark.parametrize("source,vid,hash_id,skeyid_e_,size,expected", NSS_APP_B)
def test_nss_appendix_b(source, vid, hash_id, skeyid_e_, size, expected) -> None:
    assert encryption_key(prf_for(hash_id), h(skeyid_e_), size) == h(expected), (source, vid)


# ikeV1AppBQuick entries 14-16: K1 = prf(K, seed), Kn = prf(K, Kn-1 | seed), seed = 0x00.
NSS_QUICK = [
    ("ike-sha1-vectors.h", 14, SHA1, "63e81194946ebd05df7df5ebf5d8750056bf1f1d", 132,
     "933347a07de5782247dd36d1562ffe0eecade1ebaeaa476a5f578c34a9b2b7101a621202f"
     "61db924c5ef9efa3bb2698095841603b7ac8a880329a927ecd4ad53a944b607a5ac2f3d15"
     "4e2748c188d7370d76be83fc204fdacf0f66b99dd760ba619ffac65eda1420c8a936dac5a"
     "599afaf4043b29ef2b65dc042724355b550875316c6fd"),
    ("ike-sha1-vectors.h", 16, SHA1, "63e81194946ebd05df7df5ebf5d8750056bf1f1d", 15,
     "933347a07de5782247dd36d1562ffe"),
    ("ike-sha256-vectors.h", 14, SHA256,
     "5f00d1bd2c58ec224b1e6b71fa0f19a1faa7a193952c444411b47c1a9d8ba6fe", 132,
     "b10fff32cbeaa1e7afe6ab0b191e0bd63cd524849a4b56019146d232a24cf9af59f18ed9a"
     "abbb2dbbafecf48d72a34a8f72fab2ff4f37e5c917288a78ce00933612e9531a7469995c7"
     "f7cc33c7627cac3efbc819330c4fe3bfa3788799630f37bcb74800d82bbebd17b1906e304"
     "a786f4f810c266c15be1a30576039c293272748d65966"),
    ("ike-sha384-vectors.h", 14, SHA384,
     "69fe7a1ac94adaeb711295f5fe004b1a8d6a0b65d05692758ce8ad2f7a45f59d7d0b596f5"
     "1f7dfcf3330061888f6a94f", 132,
     "9b9a56a512cc2c5d5bcee66d03974f2701d4634b3241df132b1d2fd31fb23f003969dd787"
     "3425f771aae298871672cbf0e0b966f3e961d3d94c2205decc285afae5aad6abe9ca6f5fb"
     "8420fb940bc7760c63c45bd577f561f3643fc98bff8e26663f40f225865e79cca504f527f"
     "abcfc24bd1ba8e2dbd022120f0fd9fb2caa28b031607b"),
]  # fmt: skip


def _keymat_with_seed(prf: Prf, key: bytes, seed: bytes, size: int) -> bytes:
    """keymat() takes the seed as ``[g^qm |] protocol | SPI | Ni_b | Nr_b``: NSS's one-byte seed
    0x00 is protocol 0 with empty SPI and nonces."""
    return keymat(prf, key, seed[0], seed[1:], b"", b"", size)


@pytest.mark.parametrize("source,vid,hash_id,key,size,expected", NSS_QUICK)
def test_nss_quick_mode_keymat_recurrence(source, vid, hash_id, key, size, expected) -> None:
    out = _keymat_with_seed(prf_for(hash_id), h(key), b"\x00", size)
    assert out == h(expected), (source, vid)
