"""``include`` with glob patterns, ``path include`` and the depth limit (racoon.conf(5))."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyracoon.config import MAX_INCLUDE_DEPTH, ConfigError, parse_file, parse_string

PROPOSAL = ("proposal { encryption_algorithm 3des; hash_algorithm sha1; "
            "authentication_method pre_shared_key; dh_group 2; }")


def remote_text(address: str) -> str:
    return f"remote {address} {{ exchange_mode main; {PROPOSAL} }}\n"


def test_glob_include_relative_to_path_include(tmp_path: Path) -> None:
    inc = tmp_path / "peers"
    inc.mkdir()
    (inc / "20-b.conf").write_text(remote_text("192.0.2.2"))
    (inc / "10-a.conf").write_text(remote_text("192.0.2.1"))
    (inc / "ignored.txt").write_text("this is not racoon.conf")
    main = tmp_path / "racoon.conf"
    main.write_text(f'path include "{tmp_path}";\ninclude "peers/*.conf";\nlog debug;\n')
    config = parse_file(main)
    # glob(3) order: sorted names; statements after the include still count.
    assert [str(r.address) for r in config.remotes] == ["192.0.2.1", "192.0.2.2"]
    assert config.log_level is not None and config.log_level.name == "DEBUG"
    assert config.files == [str(main), str(inc / "10-a.conf"), str(inc / "20-b.conf")]
    assert config.remotes[0].file == str(inc / "10-a.conf")


def test_absolute_include_ignores_path_include(tmp_path: Path) -> None:
    other = tmp_path / "other.conf"
    other.write_text("complex_bundle off;\n")
    config = parse_string(f'path include "/nonexistent";\ninclude "{other}";')
    assert config.complex_bundle is False


def test_include_base_resolves_relative_includes(tmp_path: Path) -> None:
    (tmp_path / "timer.conf").write_text("timer { counter 9; }\n")
    config = parse_string('include "timer.conf";', include_base=str(tmp_path))
    assert config.timer.counter == 9


def test_error_in_an_included_file_names_that_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text("\n\nlog loud;\n")
    with pytest.raises(ConfigError) as info:
        parse_string(f'include "{bad}";')
    assert str(info.value) == (f"{bad}:3: expected a log level (error, warning, notify, info, "
                               "debug, debug2) near 'loud'")


def test_no_match_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_string(f'\ninclude "{tmp_path}/none-*.conf";', "main.conf")
    assert str(info.value) == (f'main.conf:2: glob found no matches for path '
                               f'"{tmp_path}/none-*.conf" near \'"{tmp_path}/none-*.conf"\'')


def chain(tmp_path: Path, length: int) -> Path:
    """main.conf includes f1.conf, which includes f2.conf ... f{length}.conf."""
    for i in range(1, length + 1):
        text = f"timer {{ counter {i}; }}\n"
        if i < length:
            text += f'include "f{i + 1}.conf";\n'
        (tmp_path / f"f{i}.conf").write_text(text)
    main = tmp_path / "main.conf"
    main.write_text(f'path include "{tmp_path}";\ninclude "f1.conf";\n')
    return main


def test_depth_limit_allows_ten_files(tmp_path: Path) -> None:
    config = parse_file(chain(tmp_path, MAX_INCLUDE_DEPTH - 1))
    assert len(config.files) == MAX_INCLUDE_DEPTH
    assert config.timer.counter == MAX_INCLUDE_DEPTH - 1


def test_depth_limit_refuses_the_eleventh_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_file(chain(tmp_path, MAX_INCLUDE_DEPTH))
    assert str(info.value) == (f"{tmp_path}/f{MAX_INCLUDE_DEPTH - 1}.conf:2: Includes nested "
                               f"too deeply near '\"f{MAX_INCLUDE_DEPTH}.conf\"'")


def test_self_include_stops_at_the_depth_limit(tmp_path: Path) -> None:
    loop = tmp_path / "loop.conf"
    loop.write_text(f'include "{loop}";\n')
    with pytest.raises(ConfigError, match="Includes nested too deeply"):
        parse_file(loop)


def test_missing_main_file(tmp_path: Path) -> None:
    """Said plainly: no line 0 of a file that was never read, no empty 'near' token."""
    with pytest.raises(ConfigError) as info:
        parse_file(tmp_path / "absent.conf")
    assert str(info.value) == (
        f"cannot read the configuration file {tmp_path / 'absent.conf'}: No such file or directory"
    )
    (tmp_path / "dir.conf").mkdir()
    with pytest.raises(ConfigError) as info:
        parse_file(tmp_path / "dir.conf")
    assert str(info.value) == (
        f"cannot read the configuration file {tmp_path / 'dir.conf'}: Is a directory"
    )


def test_a_missing_include_names_the_include_line(tmp_path: Path) -> None:
    main = tmp_path / "main.conf"
    main.write_text(f'\ninclude "{tmp_path / "gone.conf"}";\n')
    with pytest.raises(ConfigError) as info:
        parse_file(main)
    assert str(info.value).startswith(f"{main}:2: glob found no matches for path")


def test_the_default_configuration_path_is_the_platforms() -> None:
    """One default per platform, the one that platform's racoon package uses."""
    from pyracoon.config.model import default_config_path

    assert default_config_path("linux") == "/etc/racoon/racoon.conf"  # Debian's ipsec-tools
    assert default_config_path("freebsd14") == "/usr/local/etc/racoon/racoon.conf"  # ports
    assert default_config_path("netbsd10") == "/etc/racoon/racoon.conf"  # base system
