"""Pure parts of the run report; the whole report is tested on a real run in tests/test_e2e.py."""

from pipeline.run_report import _bucket_order, report_dir, verdict_text
from pipeline.status import ComponentStatus, RunStatus


def test_length_buckets_sort_from_short_to_long():
    names = [">=400", "100-199", "<100", "200-399"]
    assert sorted(names, key=_bucket_order) == ["<100", "100-199", "200-399", ">=400"]


def test_report_dir_is_path_safe(tmp_path):
    assert report_dir(tmp_path, "2026-12-04T17:26:21.808758") == (
        tmp_path / "reports" / "2026-12-04T17-26-21.808758"
    )


def test_verdicts():
    pushed = RunStatus("r", blessed=True, pushed=True, pushed_destination="/s/17")
    assert verdict_text(pushed) == ("Blessed and pushed as version 17.", True)
    serving = RunStatus("r", blessed=True, already_serving="17")
    assert verdict_text(serving) == ("Blessed; already serving as version 17.", True)
    blocked = RunStatus("r", blessed=False, reasons=["binary_accuracy value 0.5 failed >= 0.9"])
    assert verdict_text(blocked) == (
        "Not blessed: binary_accuracy value 0.5 failed >= 0.9. Nothing was pushed.",
        False,
    )
    failed = RunStatus("r", components=[ComponentStatus("Trainer", "failed", 3.0)])
    assert verdict_text(failed) == (
        "The run did not finish in Trainer: no evaluation, nothing pushed.",
        False,
    )
