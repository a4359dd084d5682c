"""The `cnnlab` command line as a user runs it."""

from __future__ import annotations

import subprocess
import sys

from cnnlab.cli import main


def test_data_info_prints_counts_stats_and_cache(folder_dataset, capsys):
    assert main(["data", "info", "--source", str(folder_dataset), "--val-size", "3"]) == 0
    out = capsys.readouterr().out
    assert "cat" in out and "frog" in out and "total" in out
    assert "mean (RGB)" in out and "cache" in out and "32x32" in out


def test_bad_source_exits_2_with_a_message_not_a_traceback(capsys):
    assert main(["data", "info", "--source", "missing/folder"]) == 2
    err = capsys.readouterr().err
    assert "missing/folder" in err and "Traceback" not in err


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "cnnlab.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "data" in out.stdout
