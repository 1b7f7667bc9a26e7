"""Every configuration error, with its exact ``FILE:LINE: message near 'token'`` text.

Where racoon has a message for the case, ours is racoon's (cfparse.y); the token is the one at
which racoon would have noticed, which for checks made when a block closes is the ``}``.
"""

from __future__ import annotations

import pytest

from pyracoon.config import ConfigError, parse_string

P = ("proposal { encryption_algorithm 3des; hash_algorithm sha1; "
     "authentication_method pre_shared_key; dh_group 2; }")
S = ("{ encryption_algorithm aes; authentication_algorithm hmac_sha1; "
     "compression_algorithm deflate; }")

CASES = [
    (f'sainfo address 10.0.0.1 any anonymous {S}\nsainfo subnet 10.0.0.1/32 any anonymous {S}',
     "e.conf:2: duplicated sainfo: subnet 10.0.0.1[any] any anonymous (first at e.conf:1) near "
     "'}'"),
    (f'remote anonymous {{ exchange_mode main; my_identifier address "gw.example"; {P} }}',
     "e.conf:1: expected a numeric IPv4 or IPv6 address near '\"gw.example\"'"),
    (f'remote anonymous {{ {P} }}',
     "e.conf:1: no exchange mode specified. near '}'"),
    ('remote anonymous { exchange_mode main; }',
     "e.conf:1: no remote specification found: anonymous. near '}'"),
    (f'remote anonymous {{ exchange_mode main; dh_group 2; {P} }}',
     "e.conf:1: dh_group cannot be defined here. near 'dh_group'"),
    ((f'remote "a" {{ exchange_mode main; remote_address 10.0.0.1; remote_address 10.0.0.2; {P} '
      f'}}'),
     "e.conf:1: remote_address already specified near 'remote_address'"),
    (f'remote 10.0.0.1 {{ exchange_mode main; remote_address 10.0.0.2; {P} }}',
     "e.conf:1: remote_address already specified near 'remote_address'"),
    (f'remote anonymous {{ exchange_mode main; lifetime byte 100 KB; {P} }}',
     "e.conf:1: byte lifetime support is deprecated in Phase1 near 'KB'"),
    (('remote anonymous { exchange_mode main; proposal { encryption_algorithm 3des; '
      'hash_algorithm sha1; authentication_method pre_shared_key; dh_group 2; lifetime byte 1 '
      'MB; } }'),
     "e.conf:1: byte lifetime support is deprecated near 'MB'"),
    (('sainfo anonymous { lifetime byte 1 TB; encryption_algorithm aes; '
      'authentication_algorithm hmac_sha1; compression_algorithm deflate; }'),
     "e.conf:1: byte lifetime support is deprecated near 'TB'"),
    ((f'remote anonymous {{ exchange_mode aggressive; {P} proposal {{ encryption_algorithm aes; '
      f'hash_algorithm sha1; authentication_method pre_shared_key; dh_group 14; }} }}'),
     "e.conf:1: DH group must be equal in all proposals when aggressive mode is used. near '}'"),
    (('remote anonymous { exchange_mode main; proposal { hash_algorithm sha1; '
      'authentication_method pre_shared_key; dh_group 2; } }'),
     "e.conf:1: encryption algorithm required. near '}'"),
    (('remote anonymous { exchange_mode main; proposal { encryption_algorithm 3des; '
      'authentication_method pre_shared_key; dh_group 2; } }'),
     "e.conf:1: hash algorithm required. near '}'"),
    (('remote anonymous { exchange_mode main; proposal { encryption_algorithm 3des; '
      'hash_algorithm sha1; authentication_method pre_shared_key; } }'),
     "e.conf:1: DH group required. near '}'"),
    (('remote anonymous { exchange_mode main; proposal { encryption_algorithm 3des; '
      'hash_algorithm sha1; dh_group 2; } }'),
     "e.conf:1: authentication method required. near '}'"),
    ('remote anonymous { exchange_mode main; proposal { encryption_algorithm aes 100; } }',
     "e.conf:1: invalid keylen 100 (multiple of 8, 128/192/256) near '100'"),
    ('remote anonymous { exchange_mode main; proposal { encryption_algorithm aes 512; } }',
     "e.conf:1: invalid keylen 512 (multiple of 8, 128/192/256) near '512'"),
    ('remote anonymous { exchange_mode main; proposal { encryption_algorithm blowfish 44; } }',
     "e.conf:1: invalid keylen 44 (multiple of 8, 40-448) near '44'"),
    ('remote anonymous { exchange_mode main; proposal { encryption_algorithm 3des 192; } }',
     "e.conf:1: keylen not allowed near '192'"),
    ('remote anonymous { exchange_mode main; proposal { encryption_algorithm hmac_md5; } }',
     ('e.conf:1: algorithm mismatched: hmac_md5 is not a phase-1 encryption algorithm near '
      "'hmac_md5'")),
    ('remote anonymous { exchange_mode main; proposal { encryption_algorithm idea; } }',
     "e.conf:1: algorithm idea not supported near 'idea'"),
    ('remote anonymous { exchange_mode main; proposal { encryption_algorithm null; } }',
     "e.conf:1: algorithm mismatched: null is not a phase-1 encryption algorithm near 'null'"),
    ('remote anonymous { exchange_mode main; proposal { hash_algorithm tiger; } }',
     "e.conf:1: algorithm tiger not supported near 'tiger'"),
    ('remote anonymous { exchange_mode main; proposal { authentication_method rsaenc; } }',
     "e.conf:1: authentication method rsaenc is not supported near 'rsaenc'"),
    ('remote anonymous { exchange_mode main; proposal { dh_group 6; } }',
     "e.conf:1: must be DH group near '6'"),
    ('remote anonymous { exchange_mode main; proposal { dh_group 0x2; } }',
     "e.conf:1: must be DH group near '0x2'"),
    (('remote anonymous { exchange_mode main; proposal { encryption_algorithm 3des; '
      'hash_algorithm sha1; authentication_method pre_shared_key; dh_group 2; gss_id "x"; } }'),
     "e.conf:1: wrong Vendor ID for gssapi_id near 'gss_id'"),
    (('remote anonymous { exchange_mode main; peers_certfile plain_rsa "p"; proposal { '
      'authentication_method rsasig; } }'),
     ("e.conf:1: Private PlainRSA key not set. Use directive 'certificate_type plain_rsa ...' "
      "near 'rsasig'")),
    (f'remote anonymous {{ exchange_mode main; my_identifier asn1dn; {P} }}',
     "e.conf:1: ASN1 ID not specified and no CERT defined! near '}'"),
    (f'remote anonymous {{ exchange_mode main; my_identifier fqdn; {P} }}',
     "e.conf:1: identifier fqdn needs a quoted value near ';'"),
    (f'remote anonymous {{ exchange_mode main; my_identifier subnet 10.0.0.1; {P} }}',
     "e.conf:1: identifier type subnet is not allowed here near 'subnet'"),
    (f'remote anonymous {{ exchange_mode main; my_identifier fqdn tag "x"; {P} }}',
     "e.conf:1: qualifier 'tag' applies only to keyid near 'tag'"),
    (f'remote anonymous {{ exchange_mode main; my_identifier asn1dn "CN=a,,"; {P} }}',
     'e.conf:1: invalid asn1dn: invalid DN \'CN=a,,\' at offset 5: empty entry near \'"CN=a,,"\''),
    ((f'remote anonymous {{ exchange_mode main; certificate_type x509 "a" "b"; certificate_type '
      f'x509 "a" "b"; {P} }}'),
     "e.conf:1: certificate_type already defined near 'certificate_type'"),
    (f'remote anonymous {{ exchange_mode main; ca_type x509 "a"; ca_type x509 "b"; {P} }}',
     "e.conf:1: ca_type already defined near 'ca_type'"),
    ((f'remote anonymous {{ exchange_mode main; peers_certfile dnssec; peers_certfile dnssec; '
      f'{P} }}'),
     "e.conf:1: peers_certfile already defined near 'peers_certfile'"),
    (f'remote anonymous {{ exchange_mode main; passive yes; {P} }}',
     "e.conf:1: expected on or off (yes/no are not switches in racoon.conf) near 'yes'"),
    (f'remote anonymous {{ exchange_mode main; nonce_size 0x10; {P} }}',
     "e.conf:1: a hex value cannot be used as a number near '0x10'"),
    (f'remote anonymous {{ exchange_mode main; keepalive; {P} }}',
     "e.conf:1: unknown directive 'keepalive' in remote near 'keepalive'"),
    (f'remote anonymous {{ exchange_mode main, quick; {P} }}',
     "e.conf:1: expected main, aggressive or base near 'quick'"),
    (f'remote "a" {{ exchange_mode main; {P} }}\nremote "a" {{ exchange_mode main; {P} }}',
     'e.conf:2: named remoteconf "a" already exists. near \'"a"\''),
    ('remote "b" inherit "nope";',
     'e.conf:1: named parent remoteconf "nope" does not exist. near \'"nope"\''),
    ('remote 10.0.0.9 inherit 10.0.0.1;',
     "e.conf:1: failed to get remoteconf for 10.0.0.1. near '10.0.0.1'"),
    (f'remote vpn.example.org {{ exchange_mode main; {P} }}',
     ('e.conf:1: host names are not accepted; write a numeric IPv4 or IPv6 address near '
      "'vpn.example.org'")),
    ('remote anonymous { exchange_mode main;',
     "e.conf:1: missing '}' closing remote near '<EOF>'"),
    ('sainfo anonymous { encryption_algorithm aes; authentication_algorithm hmac_sha1; }',
     "e.conf:1: no compression algorithm at anonymous anonymous near '}'"),
    ('sainfo anonymous { encryption_algorithm aes; compression_algorithm deflate; }',
     "e.conf:1: no authentication algorithm at anonymous anonymous near '}'"),
    ('sainfo anonymous { authentication_algorithm hmac_sha1; compression_algorithm deflate; }',
     "e.conf:1: no encryption algorithm at anonymous anonymous near '}'"),
    (f'sainfo address 10.0.0.1 any anonymous {S}\nsainfo address 10.0.0.1 any anonymous {S}',
     ('e.conf:2: duplicated sainfo: address 10.0.0.1[any] any anonymous (first at e.conf:1) '
      "near '}'")),
    (f'sainfo address 10.0.0.1 [80] icmp anonymous {S}',
     'e.conf:1: port number must be "any". near \'[80]\''),
    (f'sainfo address ::1 icmp anonymous {S}',
     "e.conf:1: upper layer protocol mismatched. near 'icmp'"),
    (f'sainfo address 10.0.0.1 icmp6 anonymous {S}',
     "e.conf:1: upper layer protocol mismatched. near 'icmp6'"),
    (f'sainfo address 10.0.0.1/33 any anonymous {S}',
     "e.conf:1: prefix length 33 is out of range near '/33'"),
    (f'sainfo asn1dn "CN=x" anonymous {S}',
     "e.conf:1: id type forbidden: asn1dn near 'asn1dn'"),
    (f'sainfo address 10.0.0.1 anonymous {S}',
     ('e.conf:1: expected an upper-layer protocol (any, a number, esp, ah, ipcomp, icmp, '
      "icmp6, tcp, udp, gre) near 'anonymous'")),
    (f'sainfo address 10.0.0.1 256 anonymous {S}',
     "e.conf:1: upper-layer protocol must be 0..255 near '256'"),
    (f'sainfo address 10.0.0.9-10.0.0.1 any anonymous {S}',
     "e.conf:1: the range ends below its start near '-10.0.0.1'"),
    (f'sainfo address 10.0.0.1-::9 any anonymous {S}',
     "e.conf:1: the two ends of a range must be of one family near '-::9'"),
    ('sainfo anonymous { encryption_algorithm sha1; }',
     "e.conf:1: algorithm mismatched: sha1 is not an ESP encryption algorithm near 'sha1'"),
    ('sainfo anonymous { encryption_algorithm aes 100; }',
     "e.conf:1: invalid keylen 100 (multiple of 8, 128/192/256) near '100'"),
    ('sainfo anonymous { authentication_algorithm hmac_sha1 160; }',
     "e.conf:1: keylen not allowed near '160'"),
    ('sainfo anonymous { authentication_algorithm des_mac; }',
     "e.conf:1: algorithm des_mac is not supported by pyracoon near 'des_mac'"),
    ('sainfo anonymous { compression_algorithm gzip; }',
     "e.conf:1: expected a compression algorithm near 'gzip'"),
    ('sainfo anonymous { my_identifier address; }',
     "e.conf:1: unknown directive 'my_identifier' in sainfo near 'my_identifier'"),
    ('sainfo anonymous { pfs_group 3des; }',
     "e.conf:1: must be DH group near '3des'"),
    ('listen { isakmp_natt 127.0.0.1; }',
     "e.conf:1: isakmp_natt needs an explicit port, normally [4500] near '127.0.0.1'"),
    ('listen { isakmp 127.0.0.1%lo; }',
     "e.conf:1: a %scope applies only to IPv6 addresses near '127.0.0.1%lo'"),
    ('listen { isakmp 127.0.0.1 [70000]; }',
     "e.conf:1: port number out of range near '[70000]'"),
    ('listen { admin 1; }',
     "e.conf:1: unknown directive 'admin' in listen near 'admin'"),
    ('listen { adminsock "/s.sock" "u" "g" 800; }',
     "e.conf:1: Mode 800 is invalid: write at most three octal digits, e.g. 660 near '800'"),
    ('listen { adminsock "/s.sock" "u" "g" 6600; }',
     "e.conf:1: Mode 6600 is invalid: write at most three octal digits, e.g. 660 near '6600'"),
    ('listen { adminsock "/s.sock" "u" "g"; }',
     "e.conf:1: expected a mode such as 660 near ';'"),
    ('timer { interval 10; }',
     "e.conf:1: expected a time unit (sec, min, hour) near ';'"),
    ('timer { counter 5 }',
     "e.conf:1: expected ';' near '}'"),
    ('padding { maximum_length on; }',
     "e.conf:1: expected a number near 'on'"),
    ('log verbose;',
     ('e.conf:1: expected a log level (error, warning, notify, info, debug, debug2) near '
      "'verbose'")),
    ('path foo "/x";',
     ('e.conf:1: expected a path type (include, pre_shared_key, certificate, script, backupsa, '
      "pidfile) near 'foo'")),
    ('gss_id_enc utf8;',
     "e.conf:1: expected utf-16le or latin1 near 'utf8'"),
    ('complex_bundle yes;',
     "e.conf:1: expected on or off (yes/no are not switches in racoon.conf) near 'yes'"),
    ('frobnicate on;',
     "e.conf:1: unknown statement 'frobnicate' near 'frobnicate'"),
    ('ldapcfg { version 4; }',
     "e.conf:1: invalid ldap protocol version (2|3) near '4'"),
    (('radiuscfg { auth "a" "s"; auth "a" "s"; auth "a" "s"; auth "a" "s"; auth "a" "s"; auth '
      '"a" "s"; }'),
     "e.conf:1: maximum radius auth servers exceeded near 'auth'"),
    ('mode_cfg { network4 ::1; }',
     "e.conf:1: bad IPv4 network address. near '::1'"),
    ('mode_cfg { dns4 1.1.1.1, 1.1.1.2, 1.1.1.3, 1.1.1.4; }',
     "e.conf:1: No more than 3 DNS near '1.1.1.4'"),
    ('privsep { user on; }',
     "e.conf:1: expected a user name or number near 'on'"),
    ('include "/nonexistent/racoon-*.conf";',
     ('e.conf:1: glob found no matches for path "/nonexistent/racoon-*.conf" near '
      '\'"/nonexistent/racoon-*.conf"\'')),
    ('"x";',
     'e.conf:1: expected a statement near \'"x"\''),
]


@pytest.mark.parametrize(("text", "message"), CASES)
def test_error_message(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_string(text, "e.conf")
    assert str(info.value) == message
    error = info.value
    assert error.file == "e.conf"
    assert message == f"{error.file}:{error.line}: {error.message} near '{error.token}'"


def test_error_in_a_later_line_names_that_line() -> None:
    text = "log info;\n\n\ntimer {\n  counter 0x5;\n}\n"
    with pytest.raises(ConfigError) as info:
        parse_string(text, "multi.conf")
    assert (info.value.line, info.value.token) == (5, "0x5")
    assert str(info.value) == \
        "multi.conf:5: a hex value cannot be used as a number near '0x5'"
