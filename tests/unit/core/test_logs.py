"""`log_to_file`: every forensibench record in the file once, also when calls nest on one path (the
demo around its run), and nothing written once the block ends."""

from __future__ import annotations

import logging

from forensibench.core.logs import log_to_file

log = logging.getLogger("forensibench.test_logs")


def _messages(path) -> list[str]:
    return [line.split(": ", 1)[1] for line in path.read_text().splitlines() if not line.startswith("==== ")]


def test_every_level_goes_to_the_file_with_one_header(tmp_path):
    path = tmp_path / "run" / "log.txt"
    with log_to_file(path, "first"):
        log.debug("a detail")
        log.info("a line")
        log.error("a failure")
    log.info("after the block")
    assert path.read_text().splitlines()[0] == "==== first ===="
    assert _messages(path) == ["a detail", "a line", "a failure"]


def test_nested_calls_on_one_path_write_each_line_once(tmp_path):
    path = tmp_path / "log.txt"
    with log_to_file(path, "outer"):
        log.info("before")
        with log_to_file(tmp_path / "." / "log.txt", "inner"):  # the same file, spelled differently
            log.info("inside")
        log.info("after")
    assert [x for x in path.read_text().splitlines() if x.startswith("====")] == ["==== outer ===="]
    assert _messages(path) == ["before", "inside", "after"]


def test_a_second_block_appends(tmp_path):
    path = tmp_path / "log.txt"
    for header in ("one", "two"):
        with log_to_file(path, header):
            log.info(header)
    assert [x for x in path.read_text().splitlines() if x.startswith("====")] == ["==== one ====", "==== two ===="]
    assert _messages(path) == ["one", "two"]
