"""Input preparation at the edge: the user's CSV/TSV (or the embedded sample, or an imported
IMDB folder) -> validated, normalised CSV splits that CsvExampleGen reads.

Everything that can be wrong with the input is found here, before any TFX component runs, and
reported with the file, row and column. The output is ``text,label`` UTF-8 CSV with labels
mapped to class ids, split into ``train/`` and ``eval/`` by a hash of the text (identical
reviews always land in the same split) and, when a test set is given, ``test/``. The folder is
named after its content, so an unchanged input keeps its path and modification times and the
pipeline's cache stays valid.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from components import features
from pipeline.config import EMBEDDED_SOURCE, DataSection
from pipeline.imdb import imported_files, is_imported_dir

SAMPLE_RESOURCE = ("tfx", "examples/imdb/data/imdb_small_with_labels.txt")
DATA_FILE = "data.csv"
PREPARED_MANIFEST = "prepared.json"
_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".txt": "csv"}

# CSV fields can be large (long reviews); the csv module's default limit is 128 KiB.
csv.field_size_limit(64 * 1024 * 1024)


class InputDataError(ValueError):
    """Bad input, phrased for the user: which file, row and column, and what was expected."""


def embedded_sample_path() -> Path:
    """The 100 labelled IMDB reviews shipped inside the installed ``tfx`` package."""
    package, name = SAMPLE_RESOURCE
    path = Path(str(resources.files(package).joinpath(name)))
    if not path.is_file():
        raise InputDataError(
            f"the embedded sample {name} is missing from the installed '{package}' package "
            f"({path}); reinstall with 'make install'"
        )
    return path


@dataclass(frozen=True)
class Source:
    """One input file and how to read it."""

    path: Path
    delimiter: str
    text_column: str
    label_column: str
    labels: dict[str, int]
    encoding: str


@dataclass
class PreparedData:
    root: Path
    rows: dict[str, int]
    class_counts: dict[str, dict[int, int]]
    dropped_empty: int
    has_test: bool
    sources: list[str] = field(default_factory=list)
    reused: bool = False


def _delimiter(path: Path, fmt: str) -> str:
    if fmt == "tsv" or (fmt == "auto" and _SUFFIXES.get(path.suffix.lower()) == "tsv"):
        return "\t"
    return ","


def _files_of(location: str, what: str) -> list[Path]:
    path = Path(location).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        # Only .csv/.tsv in a folder (a stray README.txt is not data); a .txt file named
        # explicitly is read as CSV.
        files = sorted(
            p for p in path.iterdir() if p.is_file() and p.suffix.lower() in (".csv", ".tsv")
        )
        if not files:
            raise InputDataError(f"{what} {path}: the folder has no .csv or .tsv files")
        return files
    raise InputDataError(f"{what} {path}: no such file or folder")


def resolve_sources(data: DataSection) -> tuple[list[Source], list[Source]]:
    """(training sources, test sources) for the data section of a config."""

    def make(paths: list[Path], imported: bool = False) -> list[Source]:
        return [
            Source(
                path=p,
                delimiter="," if imported else _delimiter(p, data.format),
                text_column=features.TEXT_KEY if imported else data.text_column,
                label_column=features.LABEL_KEY if imported else data.label_column,
                labels={"0": 0, "1": 1} if imported else data.labels,
                encoding="utf-8" if imported else data.encoding,
            )
            for p in paths
        ]

    if data.source == EMBEDDED_SOURCE:
        sample = embedded_sample_path()
        train = [
            Source(sample, ",", features.TEXT_KEY, features.LABEL_KEY, {"0": 0, "1": 1}, "utf-8")
        ]
        test: list[Source] = []
    elif is_imported_dir(data.source):
        train_csv, test_csv = imported_files(data.source)
        train, test = make([train_csv], True), make([test_csv], True)
    else:
        train, test = make(_files_of(data.source, "data.source")), []
    if data.test_source:
        if is_imported_dir(data.test_source):
            test = make([imported_files(data.test_source)[1]], True)
        else:
            test = make(_files_of(data.test_source, "data.test_source"))
    return train, test


def _decode(source: Source) -> str:
    raw = source.path.read_bytes()
    try:
        text = raw.decode(source.encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InputDataError(
            f"{source.path}, line {line}: bytes {raw[exc.start : exc.end]!r} are not valid "
            f"{source.encoding}; set data.encoding to the file's encoding"
        ) from None
    return text.removeprefix("\ufeff")


def read_rows(source: Source) -> Iterator[tuple[int, str, int]]:
    """Yield (row number, text, class id); row 1 is the header, so data starts at row 2."""
    reader = csv.reader(
        io.StringIO(_decode(source), newline=""), delimiter=source.delimiter, strict=True
    )
    where = f"{source.path}"
    try:
        header = next(reader)
    except StopIteration:
        raise InputDataError(f"{where}: the file is empty; expected a header row") from None
    except csv.Error as exc:
        raise InputDataError(f"{where}, row 1: malformed header: {exc}") from None
    header = [h.strip() for h in header]
    missing = [c for c in (source.text_column, source.label_column) if c not in header]
    if missing:
        raise InputDataError(
            f"{where}: missing column(s) {missing}; the header has {header}. "
            "Set data.text_column / data.label_column"
        )
    text_at, label_at = header.index(source.text_column), header.index(source.label_column)
    allowed = sorted(source.labels)
    kind = "TSV" if source.delimiter == "\t" else "CSV"
    rows = 0
    while True:
        # A quoted field may span lines: report the line the record starts on, not where the
        # reader stopped (for an unclosed quote that is the end of the file).
        row_no = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            span = f" (read on to line {reader.line_num})" if reader.line_num > row_no else ""
            raise InputDataError(
                f"{where}, row {row_no}: malformed {kind}{span}: "
                f"{exc} (check quoting: a quote inside a field must be doubled)"
            ) from None
        if not row:
            continue
        if len(row) != len(header):
            raise InputDataError(
                f"{where}, row {row_no}: {len(row)} fields, expected {len(header)} "
                f"(columns {header}); check delimiters and quoting"
            )
        label_raw = row[label_at].strip()
        label = source.labels.get(label_raw.lower())
        if label is None:
            raise InputDataError(
                f"{where}, row {row_no}, column '{source.label_column}': label {label_raw!r} is "
                f"not one of {allowed}; map it with data.labels"
            )
        rows += 1
        yield row_no, row[text_at], label
    if rows == 0:
        raise InputDataError(f"{where}: no data rows after the header")


def _eval_bucket(text: str, eval_fraction: float) -> bool:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < eval_fraction


def _csv_text(rows: list[tuple[str, int]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([features.TEXT_KEY, features.LABEL_KEY])
    writer.writerows(rows)
    return out.getvalue()


def prepare_inputs(data: DataSection, work_dir: str | Path) -> PreparedData:
    """Validate and normalise the configured input into ``<work_dir>/inputs/<hash>/``."""
    train_sources, test_sources = resolve_sources(data)
    splits: dict[str, list[tuple[str, int]]] = {"train": [], "eval": []}
    if test_sources:
        splits["test"] = []
    dropped = 0
    for split_group, sources in (("train", train_sources), ("test", test_sources)):
        for source in sources:
            for _row_no, text, label in read_rows(source):
                text = " ".join(text.split())  # newlines and runs of blanks -> one space
                if not text:
                    dropped += 1
                    continue
                if split_group == "test":
                    splits["test"].append((text, label))
                else:
                    splits["eval" if _eval_bucket(text, data.eval_fraction) else "train"].append(
                        (text, label)
                    )
    for name, rows in splits.items():
        if not rows:
            raise InputDataError(
                f"the {name} split is empty after preparation ({dropped} empty reviews dropped); "
                "provide more rows or change data.eval_fraction"
            )

    contents = {name: _csv_text(rows) for name, rows in splits.items()}
    digest = hashlib.sha256()
    for name in sorted(contents):
        digest.update(name.encode() + b"\0" + contents[name].encode("utf-8") + b"\0")
    root = Path(work_dir) / "inputs" / digest.hexdigest()[:16]
    prepared = PreparedData(
        root=root,
        rows={name: len(rows) for name, rows in splits.items()},
        class_counts={
            name: dict(sorted(Counter(lbl for _, lbl in rows).items()))
            for name, rows in splits.items()
        },
        dropped_empty=dropped,
        has_test="test" in splits,
        sources=[str(s.path) for s in train_sources + test_sources],
    )
    if (root / PREPARED_MANIFEST).is_file():
        prepared.reused = True
        return prepared

    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root.parent))
    for name, text in contents.items():
        (staging / name).mkdir()
        (staging / name / DATA_FILE).write_text(text, encoding="utf-8")
    manifest = {
        "sources": prepared.sources,
        "rows": prepared.rows,
        "class_counts": {
            k: {str(c): n for c, n in v.items()} for k, v in prepared.class_counts.items()
        },
        "dropped_empty": dropped,
        "eval_fraction": data.eval_fraction,
    }
    (staging / PREPARED_MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    try:
        os.replace(staging, root)
    except OSError:
        # Another run prepared the same content first: theirs is identical.
        shutil.rmtree(staging, ignore_errors=True)
    return prepared


def export_prepared(prepared: PreparedData, destination: str) -> None:
    """Copy prepared splits (and their manifest) to a folder or an object store URI."""
    from tfx.dsl.io import fileio  # tf.io.gfile underneath: local paths, gs://, s3://, hdfs://

    for path in sorted(prepared.root.rglob("*")):
        if path.is_file():
            target = f"{destination.rstrip('/')}/{path.relative_to(prepared.root).as_posix()}"
            fileio.makedirs(target.rsplit("/", 1)[0])
            fileio.copy(str(path), target, overwrite=True)
