from __future__ import annotations

from harness import Net, esp_sas

CONF = """
remote {peer} {{
    exchange_mode main;
    proposal {{ encryption_algorithm aes; hash_algorithm sha1;
               authentication_method pre_shared_key; dh_group modp1024; }}
}}
sainfo anonymous {{
    encryption_algorithm aes; authentication_algorithm hmac_sha1;
    compression_algorithm deflate;
}}
"""


def test_smoke() -> None:
    net = Net()
    a = net.host("a", "10.0.0.1", CONF.format(peer="10.0.0.2"), {"10.0.0.2": "secret"})
    b = net.host("b", "10.0.0.2", CONF.format(peer="10.0.0.1"), {"10.0.0.1": "secret"})
    a.transport_policy(b)
    b.transport_policy(a)
    net.pump()
    net.acquire(a, b)
    net.pump()
    print(a.log_text())
    print(b.log_text())
    assert len(esp_sas(a)) == 2 and len(esp_sas(b)) == 2
