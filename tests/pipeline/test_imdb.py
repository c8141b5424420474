"""IMDB import: a small archive in the official layout -> train.csv, test.csv, unsup.txt."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from pipeline import imdb
from pipeline.imdb import (
    MANIFEST,
    ImdbImportError,
    import_imdb,
    imported_files,
    is_imported_dir,
)

TRICKY = 'A great film.<br /><br />Loved it, "truly".\nSecond line.'
SHARED = "Shared review text."

# Reviews in the official layout (member name -> UTF-8 text).
REVIEWS = {
    "aclImdb/train/pos/0_9.txt": TRICKY,
    "aclImdb/train/pos/1_8.txt": "Wonderful acting.",
    "aclImdb/train/pos/10_7.txt": SHARED,
    "aclImdb/train/neg/2_1.txt": "Dull and slow.",
    "aclImdb/train/neg/3_2.txt": "Terrible, just terrible.\r\nAvoid.",
    "aclImdb/test/pos/0_10.txt": SHARED,
    "aclImdb/test/pos/1_7.txt": "A fine test review.",
    "aclImdb/test/neg/0_3.txt": "Boring test review.",
    "aclImdb/test/neg/1_4.txt": "Bad test review.",
    "aclImdb/train/unsup/0_0.txt": "Unlabelled one.\nStill one.",
    "aclImdb/train/unsup/1_0.txt": "Unlabelled two.\r\nCRLF\u2028line separator.",
}
# Files of the official archive that are not reviews, and strays: all must be ignored.
IGNORED = {
    "aclImdb/README": "Large Movie Review Dataset v1.0",
    "aclImdb/imdb.vocab": "the\nand\n",
    "aclImdb/imdbEr.txt": "0.1\n0.2\n",
    "aclImdb/train/urls_pos.txt": "http://www.imdb.com/title/tt0453418/usercomments\n",
    "aclImdb/train/urls_unsup.txt": "http://www.imdb.com/title/tt0018515/usercomments\n",
    "aclImdb/test/urls_neg.txt": "http://www.imdb.com/title/tt0064354/usercomments\n",
    "aclImdb/train/labeledBow.feat": "9 0:9 1:1\n",
    "aclImdb/train/pos/notes.txt": "Not a review file name.",
    "aclImdb/test/unsup/5_0.txt": "No unsup folder under test.",
    "aclImdb/train/unsup/6_3.txt": "Unsup reviews are named <id>_0.txt.",
    "other/train/pos/7_9.txt": "Outside aclImdb/.",
}
# A symlink named like a review: only regular files are read.
SYMLINK = ("aclImdb/train/pos/99_9.txt", "1_8.txt")

EXPECTED_TRAIN = [
    {"text": "Dull and slow.", "label": "0"},
    {"text": "Terrible, just terrible. Avoid.", "label": "0"},
    {"text": 'A great film.<br /><br />Loved it, "truly". Second line.', "label": "1"},
    {"text": SHARED, "label": "1"},  # 10_7.txt sorts before 1_8.txt (file name order)
    {"text": "Wonderful acting.", "label": "1"},
]
EXPECTED_TEST = [
    {"text": "Boring test review.", "label": "0"},
    {"text": "Bad test review.", "label": "0"},
    {"text": SHARED, "label": "1"},
    {"text": "A fine test review.", "label": "1"},
]
EXPECTED_COUNTS = {
    "train": {"pos": 3, "neg": 2},
    "test": {"pos": 2, "neg": 2},
    "unsup": {"all": 2},
}


def tar_info(name: str, **attrs: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def write_archive(path: Path, files: dict[str, bytes | str], symlink: bool = True) -> Path:
    """A .tar.gz with the given members, added in reverse order, plus folders and a symlink."""
    with tarfile.open(path, "w:gz") as tar:
        for folder in ("aclImdb", "aclImdb/train", "aclImdb/train/pos"):
            tar.addfile(tar_info(folder, type=tarfile.DIRTYPE, mode=0o755))
        if symlink:
            tar.addfile(tar_info(SYMLINK[0], type=tarfile.SYMTYPE, linkname=SYMLINK[1]))
        for name in sorted(files, reverse=True):
            data = files[name]
            raw = data.encode("utf-8") if isinstance(data, str) else data
            tar.addfile(tar_info(name, size=len(raw)), io.BytesIO(raw))
    return path


def write_folder(root: Path, files: dict[str, bytes | str]) -> Path:
    """The same members extracted below ``root`` (which then holds ``aclImdb/``)."""
    for name, data in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            target.write_bytes(data.encode("utf-8"))
        else:
            target.write_bytes(data)
    (root / SYMLINK[0]).symlink_to(SYMLINK[1])
    return root


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["text", "label"]
        return list(reader)


def mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    return write_archive(tmp_path / "aclImdb_v1.tar.gz", {**REVIEWS, **IGNORED})


@pytest.fixture
def imported(tmp_path: Path, archive: Path) -> tuple[Path, imdb.ImportResult, list[str]]:
    out = tmp_path / "out"
    messages: list[str] = []
    result = import_imdb(str(archive), out, log=messages.append)
    return out, result, messages


def test_rows_labels_and_quoting(imported):
    out, result, _ = imported
    assert result.out_dir == out.resolve()
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "test.csv", "train.csv", "unsup.txt"]
    assert read_csv(out / "train.csv") == EXPECTED_TRAIN
    assert read_csv(out / "test.csv") == EXPECTED_TEST
    raw = (out / "train.csv").read_bytes()
    assert raw.startswith(b"text,label\n")
    assert b"\r" not in raw
    assert raw.count(b"\n") == 1 + len(EXPECTED_TRAIN)  # one line per row: newlines are gone
    assert b'"A great film.<br /><br />Loved it, ""truly"". Second line.",1\n' in raw
    assert b"Dull and slow.,0\n" in raw  # QUOTE_MINIMAL: no quotes when not needed


def test_train_test_separation(imported):
    out, _, _ = imported
    train_texts = {row["text"] for row in read_csv(out / "train.csv")}
    test_texts = {row["text"] for row in read_csv(out / "test.csv")}
    assert train_texts & test_texts == {SHARED}  # only the text published in both
    for ignored in IGNORED.values():
        assert ignored not in train_texts | test_texts


def test_counts_manifest_and_summary(imported, archive):
    out, result, messages = imported
    assert result.counts == EXPECTED_COUNTS
    assert result.skipped is False
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert result.source_sha256 == sha

    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["format_version"] == 1
    assert manifest["source"] == str(archive.resolve())
    assert manifest["source_sha256"] == sha
    assert manifest["counts"] == EXPECTED_COUNTS
    assert manifest["texts_in_both_train_and_test"] == 1
    assert {k: (v["name"], v["rows"]) for k, v in manifest["files"].items()} == {
        "train": ("train.csv", 5),
        "test": ("test.csv", 4),
        "unsup": ("unsup.txt", 2),
    }
    for entry in manifest["files"].values():
        assert (out / entry["name"]).stat().st_size == entry["bytes"]

    text = "\n".join(messages)
    assert "train: 5 rows (3 pos, 2 neg)" in text
    assert "test: 4 rows (2 pos, 2 neg)" in text
    assert "unsup: 2 unlabelled reviews" in text
    assert "texts in both train and test: 1" in text
    assert str(out.resolve()) in text


def test_unsup_lines(imported):
    out, _, _ = imported
    raw = (out / "unsup.txt").read_bytes()
    assert (
        raw.decode("utf-8") == "Unlabelled one. Still one.\nUnlabelled two. CRLF line separator.\n"
    )
    assert len(raw.decode("utf-8").splitlines()) == 2


def test_second_import_is_skipped_and_touches_nothing(imported, archive):
    out, first, _ = imported
    before = mtimes(out)
    messages: list[str] = []
    again = import_imdb(str(archive), out, log=messages.append)
    assert again.skipped is True
    assert again.counts == first.counts
    assert again.source_sha256 == first.source_sha256
    assert mtimes(out) == before
    assert "nothing to do" in "\n".join(messages)


def test_interrupted_or_changed_import_is_redone(tmp_path, imported, archive):
    out, _, _ = imported
    (out / "test.csv").unlink()  # a listed file is missing
    assert import_imdb(str(archive), out, log=lambda _: None).skipped is False
    assert read_csv(out / "test.csv") == EXPECTED_TEST

    (out / MANIFEST).unlink()  # interrupted before the manifest was written
    assert is_imported_dir(out) is False
    assert import_imdb(str(archive), out, log=lambda _: None).skipped is False
    assert is_imported_dir(out) is True

    # A different archive (one more train review) is imported over the old one.
    more = {**REVIEWS, "aclImdb/train/neg/4_3.txt": "Another bad one."}
    other = write_archive(tmp_path / "other.tar.gz", more)
    result = import_imdb(str(other), out, log=lambda _: None)
    assert result.skipped is False
    assert result.counts["train"] == {"pos": 3, "neg": 3}
    assert len(read_csv(out / "train.csv")) == 6


def test_failure_while_writing_leaves_no_manifest(tmp_path, imported, archive, monkeypatch):
    out, _, _ = imported
    other = write_archive(
        tmp_path / "other.tar.gz", {**REVIEWS, "aclImdb/test/neg/9_1.txt": "New."}
    )

    def disk_full(path: Path, lines: list[str]) -> dict[str, object]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(imdb, "_write_lines", disk_full)
    with pytest.raises(OSError):
        import_imdb(str(other), out, log=lambda _: None)
    # train.csv/test.csv are already new, so the folder must not pass as the old import.
    assert is_imported_dir(out) is False
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.undo()
    result = import_imdb(str(other), out, log=lambda _: None)
    assert result.skipped is False
    assert result.counts["test"] == {"pos": 2, "neg": 3}


def test_extracted_folder_gives_identical_files(tmp_path, imported):
    out, result, _ = imported
    root = write_folder(tmp_path / "extracted", {**REVIEWS, **IGNORED})
    for source in (root, root / "aclImdb"):  # the parent of aclImdb/ or aclImdb/ itself
        folder_out = tmp_path / f"from-{source.name}"
        from_folder = import_imdb(str(source), folder_out, log=lambda _: None)
        assert from_folder.skipped is False
        assert from_folder.counts == result.counts
        assert from_folder.source_sha256 is None
        for name in ("train.csv", "test.csv", "unsup.txt"):
            assert (folder_out / name).read_bytes() == (out / name).read_bytes(), name
        manifest = json.loads((folder_out / MANIFEST).read_text(encoding="utf-8"))
        assert manifest["source_sha256"] is None
        assert manifest["source"] == str(source.resolve())
        before = mtimes(folder_out)
        assert import_imdb(str(source), folder_out, log=lambda _: None).skipped is True
        assert mtimes(folder_out) == before


def test_non_utf8_review_names_the_member(tmp_path):
    bad = {**REVIEWS, "aclImdb/train/neg/3_2.txt": b"Caf\xe9 review in Latin-1"}
    archive = write_archive(tmp_path / "bad.tar.gz", bad)
    out = tmp_path / "out"
    with pytest.raises(ImdbImportError) as err:
        import_imdb(str(archive), out, log=lambda _: None)
    message = str(err.value)
    assert "aclImdb/train/neg/3_2.txt" in message
    assert "UTF-8" in message
    assert not is_imported_dir(out)


def test_archive_without_test_reviews_is_rejected(tmp_path):
    train_only = {k: v for k, v in REVIEWS.items() if not k.startswith("aclImdb/test/")}
    archive = write_archive(tmp_path / "train_only.tar.gz", {**train_only, **IGNORED})
    out = tmp_path / "out"
    with pytest.raises(ImdbImportError) as err:
        import_imdb(str(archive), out, log=lambda _: None)
    message = str(err.value)
    assert str(archive) in message
    assert "test/pos" in message
    assert "aclImdb/test/pos|neg/<id>_<rating>.txt" in message  # the expected layout
    assert not is_imported_dir(out)


def test_missing_or_broken_source(tmp_path):
    with pytest.raises(ImdbImportError, match="no such file or folder"):
        import_imdb(str(tmp_path / "nope.tar.gz"), tmp_path / "out", log=lambda _: None)
    not_gzip = tmp_path / "aclImdb_v1.tar.gz"
    not_gzip.write_text("<html>404 Not Found</html>", encoding="utf-8")
    with pytest.raises(ImdbImportError, match="gzip-compressed tar"):
        import_imdb(str(not_gzip), tmp_path / "out", log=lambda _: None)
    truncated = tmp_path / "truncated.tar.gz"
    whole = write_archive(tmp_path / "whole.tar.gz", REVIEWS).read_bytes()
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ImdbImportError, match="gzip-compressed tar"):
        import_imdb(str(truncated), tmp_path / "out", log=lambda _: None)


def test_imported_files(imported, tmp_path):
    out, _, _ = imported
    assert is_imported_dir(out) is True
    assert is_imported_dir(str(out)) is True
    assert imported_files(out) == (out / "train.csv", out / "test.csv")
    assert is_imported_dir(tmp_path) is False
    with pytest.raises(ImdbImportError, match=MANIFEST):
        imported_files(tmp_path)
    (out / "train.csv").unlink()
    with pytest.raises(ImdbImportError, match="train.csv"):
        imported_files(out)


class _FakeResponse(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def test_url_source_downloads_once(tmp_path, archive, monkeypatch):
    calls: list[str] = []

    def fake_urlopen(url: str, timeout: float) -> _FakeResponse:
        calls.append(url)
        return _FakeResponse(archive.read_bytes())

    monkeypatch.setattr(imdb.urllib.request, "urlopen", fake_urlopen)
    out = tmp_path / "out"
    result = import_imdb(imdb.DEFAULT_URL, out, log=lambda _: None)
    assert calls == [imdb.DEFAULT_URL]
    download = out / "download" / "aclImdb_v1.tar.gz"
    assert download.read_bytes() == archive.read_bytes()
    assert not download.with_name("aclImdb_v1.tar.gz.part").exists()
    assert result.counts == EXPECTED_COUNTS
    assert result.source_sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert json.loads((out / MANIFEST).read_text(encoding="utf-8"))["source"] == imdb.DEFAULT_URL

    (out / MANIFEST).unlink()  # the download is reused, not fetched again
    assert import_imdb(imdb.DEFAULT_URL, out, log=lambda _: None).skipped is False
    assert import_imdb(imdb.DEFAULT_URL, out, log=lambda _: None).skipped is True
    assert calls == [imdb.DEFAULT_URL]


def test_cut_short_download_is_an_error(tmp_path, archive, monkeypatch):
    def fake_urlopen(url: str, timeout: float) -> _FakeResponse:
        response = _FakeResponse(archive.read_bytes()[:100])
        response.headers = {"Content-Length": str(archive.stat().st_size)}
        return response

    monkeypatch.setattr(imdb.urllib.request, "urlopen", fake_urlopen)
    with pytest.raises(ImdbImportError, match="cut short"):
        import_imdb(imdb.DEFAULT_URL, tmp_path / "out", log=lambda _: None)
    assert not (tmp_path / "out" / "download" / "aclImdb_v1.tar.gz").exists()
