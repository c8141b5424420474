"""Import the official IMDB Large Movie Review archive (``aclImdb_v1.tar.gz``) as pipeline input.

The archive (a local ``.tar.gz``, its extracted ``aclImdb`` folder, or an http(s) URL) becomes::

    OUT_DIR/train.csv          text,label  from aclImdb/train/{pos,neg}/  (label 1 = pos, 0 = neg)
    OUT_DIR/test.csv           text,label  from aclImdb/test/{pos,neg}/
    OUT_DIR/unsup.txt          one unlabelled review per line, from aclImdb/train/unsup/
    OUT_DIR/imdb_import.json   the manifest: source, its SHA-256, counts, files (written last)

The official train/test separation is kept: no test review is written to ``train.csv``. Texts
that the publishers put in both train and test are kept and counted. The tar is streamed member
by member and never extracted; only regular files in the layout above are read. Rows are sorted
by (label, file name), so the same archive always gives byte-identical files. Re-running with the
same source does nothing; every file is written atomically and the manifest last, so an
interrupted import is redone on the next run.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import json
import os
import re
import shutil
import tarfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

DEFAULT_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
MANIFEST = "imdb_import.json"
FORMAT_VERSION = 1

TRAIN_CSV = "train.csv"
TEST_CSV = "test.csv"
UNSUP_TXT = "unsup.txt"
DOWNLOAD_DIR = "download"
ARCHIVE_NAME = "aclImdb_v1.tar.gz"
EXPECTED_LAYOUT = (
    "the aclImdb_v1.tar.gz layout: aclImdb/train/pos|neg/<id>_<rating>.txt and "
    "aclImdb/test/pos|neg/<id>_<rating>.txt (plus optional aclImdb/train/unsup/<id>_0.txt)"
)

LABELS = {"neg": 0, "pos": 1}
_LABELLED = re.compile(r"aclImdb/(?P<split>train|test)/(?P<cls>pos|neg)/(?P<name>\d+_\d+\.txt)")
_UNSUP = re.compile(r"aclImdb/train/unsup/(?P<name>\d+_0\.txt)")
# Keys of the collected reviews, in output order.
_GROUPS = (("train", "pos"), ("train", "neg"), ("test", "pos"), ("test", "neg"), ("unsup", "all"))
# CSV text: each line break (CRLF counts as one) becomes a space.
_CSV_BREAKS = re.compile("\r\n|[\r\n]")
# unsup.txt: everything str.splitlines() treats as a line break, so one review stays one line.
_ALL_BREAKS = re.compile("\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_DOWNLOAD_TIMEOUT_S = 60
_REQUIRED_KEYS = {
    "format_version",
    "source",
    "source_sha256",
    "counts",
    "texts_in_both_train_and_test",
    "files",
}

Counts = dict[str, dict[str, int]]
Log = Callable[[str], None]

# Reviews are short, but the csv module's default field limit (128 KiB) is not a format rule.
csv.field_size_limit(max(csv.field_size_limit(), 64 * 1024 * 1024))


class ImdbImportError(RuntimeError):
    """A user-facing import problem: which file or member, and what was expected."""


@dataclass(frozen=True)
class ImportResult:
    out_dir: Path
    # {"train": {"pos": n, "neg": n}, "test": {"pos": n, "neg": n}, "unsup": {"all": n}}
    counts: Counts
    # SHA-256 of the archive; None when the source is an extracted folder.
    source_sha256: str | None
    # True when an identical import already existed and nothing was written.
    skipped: bool


@dataclass(frozen=True)
class _Member:
    """One review in the source: its group, file name, and where it is (for messages)."""

    split: str  # "train", "test" or "unsup"
    cls: str  # "pos", "neg" or "all"
    name: str  # e.g. "123_9.txt"
    where: str  # archive member name or file path


def _classify(relpath: str) -> tuple[str, str, str] | None:
    """(split, class, file name) for a review path inside the archive, or None to ignore it."""
    relpath = relpath.removeprefix("./")
    labelled = _LABELLED.fullmatch(relpath)
    if labelled:
        return labelled["split"], labelled["cls"], labelled["name"]
    unsup = _UNSUP.fullmatch(relpath)
    if unsup:
        return "unsup", "all", unsup["name"]
    return None


def _is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def _empty_counts() -> Counts:
    counts: Counts = {}
    for split, cls in _GROUPS:
        counts.setdefault(split, {})[cls] = 0
    return counts


def _count(members: Iterable[tuple[str, str]]) -> Counts:
    counts = _empty_counts()
    for split, cls in members:
        counts[split][cls] += 1
    return counts


# --- sources ---------------------------------------------------------------------------------


def _download(url: str, directory: Path, log: Log) -> Path:
    """Download ``url`` to ``directory/aclImdb_v1.tar.gz`` (via a .part file); reuse it if there."""
    target = directory / ARCHIVE_NAME
    if target.is_file():
        log(f"Using the earlier download {target}")
        return target
    directory.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    log(f"Downloading {url} to {target} ...")
    try:
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
            expected = response.headers.get("Content-Length")
            with part.open("wb") as handle:
                shutil.copyfileobj(response, handle, 1 << 20)
    except (OSError, http.client.HTTPException) as exc:
        raise ImdbImportError(
            f"downloading {url} failed: {exc}. Check the URL and the network, or download "
            f"{ARCHIVE_NAME} yourself and pass its path"
        ) from exc
    size = part.stat().st_size
    if expected is not None and expected.isdigit() and size != int(expected):
        raise ImdbImportError(
            f"downloading {url}: got {size} bytes, the server announced {expected}; "
            "the download was cut short, run the import again"
        )
    os.replace(part, target)
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise ImdbImportError(f"{path}: cannot read the archive: {exc}") from exc
    return digest.hexdigest()


def _folder_root(path: Path) -> Path:
    """The ``aclImdb`` folder itself, whether ``path`` is that folder or its parent."""
    inner = path / "aclImdb"
    return inner if inner.is_dir() else path


def _folder_members(root: Path) -> list[tuple[_Member, Path]]:
    """Reviews in an extracted folder: regular files (not symlinks) matching the layout."""
    found: list[tuple[_Member, Path]] = []
    for sub in ("train/pos", "train/neg", "train/unsup", "test/pos", "test/neg"):
        directory = root / sub
        if not directory.is_dir():
            continue
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise ImdbImportError(f"{directory}: cannot list the folder: {exc}") from exc
        for entry in entries:
            kind = _classify(f"aclImdb/{sub}/{entry.name}")
            if kind is None or not entry.is_file(follow_symlinks=False):
                continue
            split, cls, name = kind
            found.append((_Member(split, cls, name, entry.path), Path(entry.path)))
    return found


def _read_folder(members: list[tuple[_Member, Path]]) -> Iterator[tuple[_Member, bytes]]:
    for member, path in members:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImdbImportError(f"{path}: cannot read the review: {exc}") from exc
        yield member, data


def _read_tar(archive: Path) -> Iterator[tuple[_Member, bytes]]:
    """Stream the review members of a .tar.gz; nothing is extracted to disk."""
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for info in tar:
                if not info.isreg():
                    continue
                kind = _classify(info.name)
                if kind is None:
                    continue
                handle = tar.extractfile(info)
                if handle is None:  # not reachable for regular files; keeps the type checker calm
                    continue
                with handle:
                    data = handle.read()
                split, cls, name = kind
                yield _Member(split, cls, name, info.name), data
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ImdbImportError(
            f"{archive}: cannot read it as a gzip-compressed tar archive ({exc}); expected "
            f"{ARCHIVE_NAME} as published, or its extracted aclImdb folder. If it was "
            "downloaded, the file may be incomplete: download it again"
        ) from exc


def _collect(
    items: Iterable[tuple[_Member, bytes]], source: str
) -> dict[tuple[str, str], dict[str, str]]:
    """Decode every review: {(split, class): {file name: text with line breaks removed}}."""
    reviews: dict[tuple[str, str], dict[str, str]] = {group: {} for group in _GROUPS}
    for member, data in items:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImdbImportError(
                f"{source}: review {member.where} is not valid UTF-8 (bytes "
                f"{data[exc.start : exc.end]!r} at offset {exc.start}); the official archive is "
                "UTF-8, so this copy is damaged: download it again"
            ) from None
        group = reviews[(member.split, member.cls)]
        if member.name in group:
            raise ImdbImportError(
                f"{source}: review {member.where} appears more than once; expected "
                f"{EXPECTED_LAYOUT}"
            )
        text = text.removeprefix("\ufeff")
        breaks = _ALL_BREAKS if member.split == "unsup" else _CSV_BREAKS
        group[member.name] = breaks.sub(" ", text)
    return reviews


# --- output ----------------------------------------------------------------------------------


@contextmanager
def _atomic_text(path: Path) -> Iterator[TextIO]:
    """Write ``path`` through a temporary file in the same folder, then ``os.replace`` it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as handle:
            yield handle
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _labelled_rows(reviews: dict[tuple[str, str], dict[str, str]], split: str) -> list[list[str]]:
    """[text, label] rows of one split, sorted by (label, file name)."""
    keyed = [
        (LABELS[cls], name, text) for cls in LABELS for name, text in reviews[(split, cls)].items()
    ]
    keyed.sort(key=lambda row: (row[0], row[1]))
    return [[text, str(label)] for label, _name, text in keyed]


def _write_csv(path: Path, rows: list[list[str]], expected: dict[str, int]) -> dict[str, Any]:
    with _atomic_text(path) as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    # Read the file back: rows per class must equal the reviews found.
    found = dict.fromkeys(LABELS, 0)
    by_label = {str(label): cls for cls, label in LABELS.items()}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            found[by_label[row["label"]]] += 1
    if found != expected:
        raise ImdbImportError(
            f"{path}: wrote {found} rows per class but found {expected} reviews; "
            "the file was not written completely, run the import again"
        )
    return {"name": path.name, "rows": len(rows), "bytes": path.stat().st_size}


def _write_lines(path: Path, lines: list[str]) -> dict[str, Any]:
    with _atomic_text(path) as handle:
        for line in lines:
            handle.write(line + "\n")
    return {"name": path.name, "rows": len(lines), "bytes": path.stat().st_size}


# --- manifest --------------------------------------------------------------------------------


def _read_manifest(out_dir: Path) -> dict[str, Any] | None:
    """The manifest of an earlier import, or None when there is none or it is unreadable."""
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _manifest_files(manifest: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    files = manifest.get("files")
    if not isinstance(files, dict) or not {"train", "test", "unsup"} <= files.keys():
        return None
    for entry in files.values():
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name or Path(name).name != name:
            return None
    return files


def _files_intact(out_dir: Path, manifest: dict[str, Any]) -> bool:
    files = _manifest_files(manifest)
    if files is None:
        return False
    for entry in files.values():
        path = out_dir / entry["name"]
        if not path.is_file() or path.stat().st_size != entry.get("bytes"):
            return False
    return True


def is_imported_dir(path: str | Path) -> bool:
    """True when ``path`` is a folder written by :func:`import_imdb` (it has the manifest)."""
    return (Path(path).expanduser() / MANIFEST).is_file()


def imported_files(path: str | Path) -> tuple[Path, Path]:
    """(train.csv, test.csv) of an imported folder, as listed in its manifest."""
    folder = Path(path).expanduser()
    manifest = _read_manifest(folder)
    files = _manifest_files(manifest) if manifest is not None else None
    if files is None:
        raise ImdbImportError(
            f"{folder / MANIFEST}: missing or not a valid IMDB import manifest; run "
            "'sentiment-pipeline data import-imdb' again"
        )
    train, test = folder / files["train"]["name"], folder / files["test"]["name"]
    for csv_path in (train, test):
        if not csv_path.is_file():
            raise ImdbImportError(
                f"{csv_path}: listed in {folder / MANIFEST} but missing; run "
                "'sentiment-pipeline data import-imdb' again"
            )
    return train, test


def imported_unlabelled(path: str | Path) -> Path | None:
    """unsup.txt of an imported folder (for word-vector pre-training), if it has one."""
    folder = Path(path).expanduser()
    manifest = _read_manifest(folder)
    files = _manifest_files(manifest) if manifest is not None else None
    if not files or "unsup" not in files:
        return None
    unsup = folder / files["unsup"]["name"]
    return unsup if unsup.is_file() else None


def _summary(manifest: dict[str, Any], out_dir: Path, log: Log) -> None:
    counts = manifest["counts"]
    for split in ("train", "test"):
        pos, neg = counts[split]["pos"], counts[split]["neg"]
        log(f"  {split}: {pos + neg} rows ({pos} pos, {neg} neg)")
    log(f"  unsup: {counts['unsup']['all']} unlabelled reviews")
    log(
        f"  texts in both train and test: {manifest['texts_in_both_train_and_test']} "
        "(published that way; kept)"
    )
    names = ", ".join(entry["name"] for entry in manifest["files"].values())
    log(f"  written to {out_dir}: {names}, {MANIFEST}")


# --- the import ------------------------------------------------------------------------------


def import_imdb(source: str, out_dir: str | Path, *, log: Log = print) -> ImportResult:
    """Convert the IMDB archive at ``source`` (.tar.gz path, extracted folder or URL)."""
    out = Path(out_dir).expanduser().resolve()
    if _is_url(source):
        path = _download(source, out / DOWNLOAD_DIR, log)
        source_label = source
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise ImdbImportError(
                f"{path}: no such file or folder; expected {ARCHIVE_NAME} or its extracted "
                "aclImdb folder"
            )
        path = path.resolve()
        source_label = str(path)

    folder_members: list[tuple[_Member, Path]] = []
    if path.is_dir():
        folder_members = _folder_members(_folder_root(path))
        sha256: str | None = None
        counts_now = _count((m.split, m.cls) for m, _ in folder_members)
    else:
        sha256 = _sha256(path)
        counts_now = None

    previous = _read_manifest(out)
    if (
        previous is not None
        and _REQUIRED_KEYS <= previous.keys()
        and previous["format_version"] == FORMAT_VERSION
    ):
        if sha256 is not None:
            same = previous.get("source_sha256") == sha256
        else:
            same = (
                previous.get("source_sha256") is None
                and previous.get("source") == source_label
                and previous.get("counts") == counts_now
            )
        if same and _files_intact(out, previous):
            log(f"IMDB already imported from {source_label} into {out}; nothing to do")
            _summary(previous, out, log)
            return ImportResult(out, previous["counts"], sha256, skipped=True)

    log(f"Importing IMDB reviews from {source_label} ...")
    items = _read_folder(folder_members) if path.is_dir() else _read_tar(path)
    reviews = _collect(items, source_label)
    counts = _count((split, cls) for (split, cls), group in reviews.items() for _ in group)
    for split, cls in _GROUPS[:4]:
        if counts[split][cls] == 0:
            raise ImdbImportError(
                f"{source_label}: no labelled reviews in {split}/{cls} (found {counts}); "
                f"expected {EXPECTED_LAYOUT}"
            )

    train_rows = _labelled_rows(reviews, "train")
    test_rows = _labelled_rows(reviews, "test")
    in_both = len({row[0] for row in train_rows} & {row[0] for row in test_rows})
    unsup_group = reviews[("unsup", "all")]
    unsup_lines = [unsup_group[name] for name in sorted(unsup_group)]

    out.mkdir(parents=True, exist_ok=True)
    # Remove the old manifest first: until the new one is written, the folder is not an import.
    (out / MANIFEST).unlink(missing_ok=True)
    files = {
        "train": _write_csv(out / TRAIN_CSV, train_rows, counts["train"]),
        "test": _write_csv(out / TEST_CSV, test_rows, counts["test"]),
        "unsup": _write_lines(out / UNSUP_TXT, unsup_lines),
    }
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "source": source_label,
        "source_sha256": sha256,
        "counts": counts,
        "texts_in_both_train_and_test": in_both,
        "files": files,
    }
    with _atomic_text(out / MANIFEST) as handle:
        handle.write(json.dumps(manifest, indent=2) + "\n")
    log(f"Imported IMDB from {source_label}:")
    _summary(manifest, out, log)
    return ImportResult(out, counts, sha256, skipped=False)
