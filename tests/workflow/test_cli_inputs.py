"""Bad input to `phrase-connector run`: a clear message, exit code 2, and no output written."""

from __future__ import annotations

import socket

import pytest

from phrase_connector_local.cli import main


def _run(capsys, *argv):
    code = main(["run", *argv])
    return code, capsys.readouterr().err


def test_missing_source_folder(tmp_path, capsys):
    code, err = _run(capsys, "--source", str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    assert code == 2
    assert "does not exist" in err
    assert str(tmp_path / "nope") in err
    assert not (tmp_path / "out").exists()


def test_empty_source_file(tmp_path, capsys):
    source = tmp_path / "src"
    source.mkdir()
    (source / "good.json").write_text('{"a": "b"}')
    (source / "empty.md").write_bytes(b"")
    code, err = _run(capsys, "--source", str(source), "--out", str(tmp_path / "out"))
    assert code == 2
    assert "empty.md" in err
    assert "is empty" in err
    assert not (tmp_path / "out").exists()


def test_unknown_locale_code(tmp_path, capsys):
    code, err = _run(capsys, "--locales", "de,xx_yy", "--out", str(tmp_path / "out"))
    assert code == 2
    assert "'xx_yy'" in err
    assert not (tmp_path / "out").exists()


def test_webhook_port_in_use(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = _run(capsys, "--webhook-port", str(port), "--out", str(tmp_path / "out"))
    assert code == 2
    assert f"Port {port}" in err
    assert "already in use" in err
    assert not (tmp_path / "out").exists()


def test_simulator_port_in_use(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = _run(capsys, "--simulator-port", str(port), "--out", str(tmp_path / "out"))
    assert code == 2
    assert str(port) in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("port", ["-1", "70000", "http"])
def test_invalid_port_rejected(tmp_path, capsys, port):
    with pytest.raises(SystemExit) as caught:
        main(["run", "--webhook-port", port])
    assert caught.value.code == 2
    assert "invalid port" in capsys.readouterr().err


def test_output_inside_source_rejected(tmp_path, capsys):
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("Hello.\n")
    code, err = _run(capsys, "--source", str(source), "--out", str(source / "out"))
    assert code == 2
    assert "overlaps --source" in err
    assert (source / "a.txt").exists()


def test_output_equal_to_source_rejected(tmp_path, capsys):
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("Hello.\n")
    code, err = _run(capsys, "--source", str(source), "--out", str(source))
    assert code == 2
    assert "overlaps --source" in err
    assert (source / "a.txt").read_text() == "Hello.\n"


@pytest.mark.parametrize("value", ["0", "-5"])
def test_non_positive_timeout_rejected(tmp_path, capsys, value):
    code, err = _run(capsys, "--timeout", value, "--out", str(tmp_path / "out"))
    assert code == 2
    assert f"--timeout {float(value)}" in err


def test_timeout_reports_one_line(tmp_path, capsys):
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("Hello.\n")
    code, err = _run(capsys, "--source", str(source), "--out", str(tmp_path / "out"), "--timeout", "0.5",
                     "--step-seconds", "5")
    assert code == 1
    assert "still running after 0.5 s" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_unsupported_file_fails_run(tmp_path, capsys):
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("Hello.\n")
    (source / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n0000")
    code, err = _run(capsys, "--source", str(source), "--out", str(tmp_path / "out"), "--locales", "de")
    assert code == 1
    assert "does not support the format of content/logo.png" in err
    assert not (tmp_path / "out").exists()
