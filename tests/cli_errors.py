"""Shared check for `genstudio generate FAMILY`: unwritable outputs and bad arguments end in one line."""

from __future__ import annotations

from pathlib import Path


def assert_one_line_errors(main, family: str, bad_args: list[tuple[list[str], str]], tmp_path: Path, capsys) -> None:
    """--out and --npy under a file (not a folder), then each (extra args, message): exit 2, the message, no
    traceback, and nothing written."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    cases = [(["--out", str(blocker / "g.png")], "could not write the images"),
             (["--npy", str(blocker / "g.npy")], "could not write the images"), *bad_args]
    for extra, message in cases:
        assert main(["generate", family, "--n", "2", *extra]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, extra
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-folder"]
