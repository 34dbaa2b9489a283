"""Fault injection for the reliability tests: a run (a subprocess) that pauses at a chosen file write, so the
test can SIGKILL it there, or that fills its disk just before a chosen write.

    SSLREG_TEST_PAUSE=NAME:write    pause halfway through writing checkpoint NAME (its .part file, half written)
    SSLREG_TEST_PAUSE=NAME:publish  pause just before NAME is moved into place (complete temporary file written)
    SSLREG_TEST_MARK=PATH           created once paused; the run goes on when PATH.go appears (else waits forever)
    SSLREG_TEST_FILL=NAME:FILLER    just before checkpoint NAME is written, grow FILLER until its disk is full

    python tests/reliability_helpers.py CONFIG.yaml [--set ...]   # like runner_helpers.py, with the above
"""

from __future__ import annotations

import errno
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import runner_helpers

PAUSE_ENV = "SSLREG_TEST_PAUSE"
MARK_ENV = "SSLREG_TEST_MARK"
FILL_ENV = "SSLREG_TEST_FILL"


def _pause() -> None:
    mark = Path(os.environ[MARK_ENV])
    mark.write_text(str(os.getpid()))
    while not mark.with_name(mark.name + ".go").exists():
        time.sleep(0.02)


def fill_disk(filler: Path) -> None:
    """Write zeros to ``filler`` until the disk holding it is full."""
    with open(filler, "ab") as stream:
        block = b"\0" * 65536
        try:
            while True:
                stream.write(block)
                stream.flush()
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
            while block:  # fill the last bytes too
                block = block[: len(block) // 2]
                try:
                    stream.write(block)
                    stream.flush()
                except OSError:
                    continue


def install() -> None:
    """Patch the file writes named by the environment (see the module docstring)."""
    from mmengine.fileio.backends.local_backend import LocalBackend

    import sslreg.files

    pause = os.environ.get(PAUSE_ENV, "")
    fill = os.environ.get(FILL_ENV, "")
    name, _, phase = pause.partition(":")
    fill_name, _, filler = fill.partition(":")
    original_put, original_publish = LocalBackend.put, sslreg.files.publish

    def put(self, obj: bytes, filepath) -> None:
        target = Path(filepath).name
        if fill and target == f".{fill_name}.part":
            fill_disk(Path(filler))
        if phase == "write" and target == f".{name}.part":
            with open(filepath, "wb") as stream:
                stream.write(obj[: len(obj) // 2])
                stream.flush()
                os.fsync(stream.fileno())
                _pause()
                stream.write(obj[len(obj) // 2 :])
            return
        original_put(self, obj, filepath)

    def publish(temporary, path) -> None:
        if phase == "publish" and Path(path).name == name:
            _pause()
        original_publish(temporary, path)

    LocalBackend.put = put
    sslreg.files.publish = publish


if __name__ == "__main__":
    install()
    sys.exit(runner_helpers.main(sys.argv[1:]))
