"""Two runs on one metadata store: the second fails at once with a clear message."""

import pytest

from pipeline.locking import PipelineBusyError, run_lock


def test_second_run_on_the_same_store_is_refused(tmp_path):
    store = str(tmp_path / "metadata.sqlite")
    with run_lock(store):
        with pytest.raises(PipelineBusyError, match=r"another run is using .*metadata.sqlite.*pid"):
            with run_lock(store):
                pass
    with run_lock(store):  # released after the first run: a later run goes ahead
        pass


def test_other_stores_do_not_block(tmp_path):
    with run_lock(str(tmp_path / "a.sqlite")), run_lock(str(tmp_path / "b.sqlite")):
        pass
