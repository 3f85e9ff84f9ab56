"""The one atomic writer: plain permissions, the old file kept when a write fails, no temporary left behind."""

from __future__ import annotations

import os
import stat

import pytest

from chronos_distill.files import current_umask, write_atomic, write_json_atomic


def test_written_files_have_plain_permissions_and_replace_the_old_one(tmp_path):
    path = tmp_path / "sub" / "record.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2})
    assert path.read_text() == '{\n  "a": 2\n}\n'
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~current_umask()
    assert os.listdir(path.parent) == ["record.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("old\n")

    def half_then_fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(path, half_then_fail)
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["table.csv"]
