"""Input preparation: sources, reading (formats, encodings, labels), the prepared splits, and
every user-facing error naming the file, row/line, column and what was expected.

All input files are written by the tests themselves into ``tmp_path``; the only other file read
is the sample shipped inside the installed ``tfx`` package.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from pipeline import data as data_mod
from pipeline.config import DataSection
from pipeline.data import (
    DATA_FILE,
    PREPARED_MANIFEST,
    InputDataError,
    embedded_sample_path,
    prepare_inputs,
    read_rows,
    resolve_sources,
)

# ------------------------------------------------------------------------------------ helpers


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def csv_text(rows: list[list[str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return out.getvalue()


def reviews(n: int, prefix: str = "review") -> list[list[str]]:
    """``n`` distinct synthetic reviews, alternating labels."""
    return [[f"{prefix} number {i} about a film", str(i % 2)] for i in range(n)]


# Enough distinct rows that both train and eval are non-empty at the default eval_fraction.
FILLER = reviews(20, "filler")


def rows_of(path: Path, **data_kwargs) -> list[tuple[int, str, int]]:
    train, _ = resolve_sources(DataSection(source=str(path), **data_kwargs))
    assert len(train) == 1
    return list(read_rows(train[0]))


def read_split(root: Path, split: str) -> list[list[str]]:
    with open(root / split / DATA_FILE, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["text", "label"]
    return rows[1:]


def prepared_rows(root: Path, splits=("train", "eval")) -> dict[str, list[tuple[str, int]]]:
    return {s: [(t, int(lbl)) for t, lbl in read_split(root, s)] for s in splits}


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(InputDataError) as err:
        result = fn(*args, **kwargs)
        if hasattr(result, "__next__"):
            list(result)
    return str(err.value)


def read_error(path: Path, **data_kwargs) -> str:
    return error_of(rows_of, path, **data_kwargs)


# ---------------------------------------------------------------------------- embedded sample


def test_embedded_sample_is_inside_installed_tfx():
    import tfx

    path = embedded_sample_path()
    assert path.is_file()
    assert path.name == "imdb_small_with_labels.txt"
    assert Path(tfx.__file__).resolve().parent in path.resolve().parents

    train, test = resolve_sources(DataSection())
    assert test == []
    assert [s.path for s in train] == [path]
    assert (train[0].text_column, train[0].label_column, train[0].delimiter) == (
        "text",
        "label",
        ",",
    )


def test_embedded_sample_prepares_deterministically(tmp_path):
    first = prepare_inputs(DataSection(), tmp_path)
    assert first.reused is False
    assert first.rows["train"] + first.rows["eval"] == 100
    assert first.rows["train"] > 0 and first.rows["eval"] > 0
    assert first.has_test is False and "test" not in first.rows
    assert first.dropped_empty == 0
    assert first.root.parent == tmp_path / "inputs"
    assert (first.root / PREPARED_MANIFEST).is_file()

    got = prepared_rows(first.root)
    for split in ("train", "eval"):
        assert len(got[split]) == first.rows[split]
        assert {lbl for _, lbl in got[split]} <= {0, 1}
        assert sum(first.class_counts[split].values()) == first.rows[split]
    assert set(first.class_counts["train"]) | set(first.class_counts["eval"]) == {0, 1}

    files = sorted(p for p in first.root.rglob("*") if p.is_file())
    mtimes = {p: p.stat().st_mtime_ns for p in files}

    second = prepare_inputs(DataSection(), tmp_path)
    assert second.root == first.root
    assert second.reused is True
    assert second.rows == first.rows
    assert second.class_counts == first.class_counts
    assert sorted(p for p in second.root.rglob("*") if p.is_file()) == files
    assert {p: p.stat().st_mtime_ns for p in files} == mtimes
    # Nothing else (no stray staging folders) next to the prepared folder.
    assert list((tmp_path / "inputs").iterdir()) == [first.root]


# ------------------------------------------------------------------------- formats and labels


def test_custom_columns_and_label_mapping(tmp_path):
    path = write(
        tmp_path / "my.csv",
        csv_text(
            [
                ["id", "review", "sentiment"],
                ["1", "Loved every minute", "pos"],
                ["2", "Dull and long", "neg"],
                ["3", "A triumph", " POS "],
                ["4", "Not again", "Neg"],
            ]
        ),
    )
    got = rows_of(path, text_column="review", label_column="sentiment", labels={"pos": 1, "neg": 0})
    assert got == [
        (2, "Loved every minute", 1),
        (3, "Dull and long", 0),
        (4, "A triumph", 1),
        (5, "Not again", 0),
    ]

    # Defaults only understand the default spellings, and the columns are named differently.
    msg = read_error(path)
    assert str(path) in msg and "['text', 'label']" in msg


def test_config_label_mapping_replaces_defaults(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\ngood,yes\nbad,no\nmeh,1\n")
    msg = read_error(path, labels={"yes": 1, "no": 0})
    assert "row 4" in msg and "'1'" in msg and "['no', 'yes']" in msg


def test_tsv_detected_by_suffix(tmp_path):
    path = write(
        tmp_path / "d.TSV",
        'text\tlabel\nA film, with commas, in it\t1\n"Quoted\ttab, inside"\t0\n',
    )
    train, _ = resolve_sources(DataSection(source=str(path)))
    assert train[0].delimiter == "\t"
    # The quoted field is one field; the tab inside it stays in the text.
    assert list(read_rows(train[0])) == [
        (2, "A film, with commas, in it", 1),
        (3, "Quoted\ttab, inside", 0),
    ]


def test_tsv_selected_by_format(tmp_path):
    text = "text\tlabel\nA film, with commas\t1\nAnother, one\t0\n"
    for name in ("d.csv", "d.txt"):
        path = write(tmp_path / name, text)
        train, _ = resolve_sources(DataSection(source=str(path), format="tsv"))
        assert train[0].delimiter == "\t"
        assert [(t, lbl) for _, t, lbl in read_rows(train[0])] == [
            ("A film, with commas", 1),
            ("Another, one", 0),
        ]
        # Read as CSV (auto, .csv/.txt suffix) the header is a single column.
        msg = read_error(path)
        assert "missing column" in msg and "'text\\tlabel'" in msg


def test_csv_format_forced_on_tsv_suffix(tmp_path):
    path = write(tmp_path / "d.tsv", "text,label\nfine film,1\n")
    assert rows_of(path, format="csv") == [(2, "fine film", 1)]


def test_folder_of_csv_files(tmp_path):
    folder = tmp_path / "in"
    write(folder / "b.csv", csv_text([["text", "label"], ["second file review", "1"]]))
    write(folder / "a.csv", csv_text([["text", "label"], ["first file review", "0"]]))
    write(folder / "c.tsv", "text\tlabel\ntab separated review\tpos\n")
    write(folder / "notes.md", "not data")
    (folder / "sub").mkdir()
    write(folder / "sub" / "ignored.csv", "garbage")

    train, test = resolve_sources(DataSection(source=str(folder)))
    assert test == []
    assert [s.path.name for s in train] == ["a.csv", "b.csv", "c.tsv"]
    assert [s.delimiter for s in train] == [",", ",", "\t"]

    assert [(t, lbl) for s in train for _, t, lbl in read_rows(s)] == [
        ("first file review", 0),
        ("second file review", 1),
        ("tab separated review", 1),
    ]

    write(folder / "d.csv", csv_text([["text", "label"], *FILLER]))
    prepared = prepare_inputs(DataSection(source=str(folder)), tmp_path)
    got = prepared_rows(prepared.root)
    assert sorted(got["train"] + got["eval"]) == sorted(
        [
            ("first file review", 0),
            ("second file review", 1),
            ("tab separated review", 1),
            *[(t, int(lbl)) for t, lbl in FILLER],
        ]
    )
    assert prepared.sources == [str(folder / n) for n in ("a.csv", "b.csv", "c.tsv", "d.csv")]


def test_utf8_bom_is_ignored(tmp_path):
    path = write(tmp_path / "bom.csv", "\ufefftext,label\nCafé crème,1\n")
    assert rows_of(path) == [(2, "Café crème", 1)]
    # Also when the BOM is consumed by the codec itself.
    assert rows_of(path, encoding="utf-8-sig") == [(2, "Café crème", 1)]


@pytest.mark.parametrize(
    "encoding,text",
    [
        ("latin-1", "Café naïve, señor; £5 déjà vu: ÿ ß Ø"),
        ("cp1252", "Café – “quoted” €5 naïve…"),
    ],
)
def test_legacy_encoding(tmp_path, encoding, text):
    path = write(
        tmp_path / "legacy.csv", csv_text([["text", "label"], [text, "1"], *FILLER]), encoding
    )
    assert rows_of(path, encoding=encoding)[0] == (2, text, 1)

    prepared = prepare_inputs(DataSection(source=str(path), encoding=encoding), tmp_path)
    got = prepared_rows(prepared.root)  # written back as UTF-8
    assert (text, 1) in got["train"] + got["eval"]


def test_legacy_bytes_without_encoding_name_the_line(tmp_path):
    body = csv_text([["text", "label"], ["plain ascii", "0"], ["Café", "1"]])
    path = write(tmp_path / "latin.csv", body, "latin-1")
    msg = read_error(path)
    assert str(path) in msg
    assert "line 3" in msg
    assert "b'\\xe9'" in msg
    assert "utf-8" in msg and "data.encoding" in msg


# -------------------------------------------------------------------------- prepared output


def test_prepared_output_normalised(tmp_path):
    tricky = [
        ['He said "wow, great", then left', "pos"],
        ["line one\nline two\r\n   three\tfour", "neg"],
        ["  padded  text  ", "1"],
        ["comma, at, every, turn,", "0"],
        ['"fully quoted"', "positive"],
    ]
    path = write(tmp_path / "d.csv", csv_text([["text", "label"], *tricky, *FILLER]))
    # read_rows returns the raw text; normalisation happens when preparing.
    assert [t for _, t, _ in rows_of(path)][: len(tricky)] == [t for t, _ in tricky]

    prepared = prepare_inputs(DataSection(source=str(path)), tmp_path)
    text = (prepared.root / "train" / DATA_FILE).read_text(encoding="utf-8")
    assert text.startswith("text,label\n")

    got = prepared_rows(prepared.root)
    assert sorted(got["train"] + got["eval"]) == sorted(
        [
            ('He said "wow, great", then left', 1),
            ("line one line two three four", 0),
            ("padded text", 1),
            ("comma, at, every, turn,", 0),
            ('"fully quoted"', 1),
            *[(t, int(lbl)) for t, lbl in FILLER],
        ]
    )
    for split in ("train", "eval"):
        for row in read_split(prepared.root, split):
            assert len(row) == 2 and row[1] in {"0", "1"}
            assert "\n" not in row[0] and "\r" not in row[0]
        assert len(got[split]) == prepared.rows[split]


def test_identical_texts_share_a_split(tmp_path):
    body = [["text", "label"]]
    for i in range(40):
        base = f"the same review {i}"
        # Identical after whitespace normalisation, with the label spelt differently.
        body += [[base, "pos"], [f"  {base}\n", "1"], [base.replace(" ", "   "), "positive"]]
    path = write(tmp_path / "dup.csv", csv_text(body))
    prepared = prepare_inputs(DataSection(source=str(path), eval_fraction=0.5), tmp_path)
    got = prepared_rows(prepared.root)
    train, evals = [t for t, _ in got["train"]], [t for t, _ in got["eval"]]
    assert train and evals
    assert not set(train) & set(evals)
    assert len(train) + len(evals) == 120
    assert all(train.count(t) == 3 for t in train) and all(evals.count(t) == 3 for t in evals)


def test_split_is_stable_when_rows_are_added(tmp_path):
    base = reviews(30)
    small = write(tmp_path / "small.csv", csv_text([["text", "label"], *base]))
    big = write(tmp_path / "big.csv", csv_text([["text", "label"], *base, *reviews(30, "new")]))
    a = prepared_rows(prepare_inputs(DataSection(source=str(small)), tmp_path / "a").root)
    b = prepared_rows(prepare_inputs(DataSection(source=str(big)), tmp_path / "b").root)
    for split in ("train", "eval"):
        assert set(a[split]) <= set(b[split])


def test_changed_input_gets_a_new_folder(tmp_path):
    path = write(tmp_path / "d.csv", csv_text([["text", "label"], *reviews(20)]))
    first = prepare_inputs(DataSection(source=str(path)), tmp_path)
    write(path, csv_text([["text", "label"], *reviews(21)]))
    second = prepare_inputs(DataSection(source=str(path)), tmp_path)
    assert second.root != first.root and second.reused is False
    assert (first.root / PREPARED_MANIFEST).is_file()


def test_test_source_gets_its_own_split(tmp_path):
    train_path = write(tmp_path / "train.csv", csv_text([["text", "label"], *reviews(20)]))
    test_rows = [["held out one", "1"], ["held out two", "0"], ["held out three", "pos"]]
    test_path = write(tmp_path / "test.tsv", csv_text([["text", "label"], *test_rows], "\t"))

    cfg = DataSection(source=str(train_path), test_source=str(test_path))
    train, test = resolve_sources(cfg)
    assert [s.path for s in train] == [train_path]
    assert [s.path for s in test] == [test_path] and test[0].delimiter == "\t"

    prepared = prepare_inputs(cfg, tmp_path)
    assert prepared.has_test is True
    assert prepared.rows == {
        "train": prepared.rows["train"],
        "eval": prepared.rows["eval"],
        "test": 3,
    }
    assert prepared.rows["train"] + prepared.rows["eval"] == 20
    assert prepared.class_counts["test"] == {0: 1, 1: 2}
    got = prepared_rows(prepared.root, ("train", "eval", "test"))
    assert got["test"] == [("held out one", 1), ("held out two", 0), ("held out three", 1)]
    held_out = {t for t, _ in got["test"]}
    assert not held_out & {t for t, _ in got["train"] + got["eval"]}
    assert prepared.sources == [str(train_path), str(test_path)]


def test_empty_texts_dropped_and_counted(tmp_path):
    body = [["text", "label"], *reviews(10), ["", "1"], ["   ", "0"], ["\n\t \r\n", "pos"]]
    path = write(tmp_path / "d.csv", csv_text(body) + "\n\n")  # trailing blank lines skipped
    prepared = prepare_inputs(DataSection(source=str(path)), tmp_path)
    assert prepared.dropped_empty == 3
    assert prepared.rows["train"] + prepared.rows["eval"] == 10
    got = prepared_rows(prepared.root)
    assert all(t.strip() for t, _ in got["train"] + got["eval"])


def test_only_empty_texts_is_an_error(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\n,1\n  ,0\n")
    msg = error_of(prepare_inputs, DataSection(source=str(path)), tmp_path)
    assert "split is empty" in msg and "2 empty reviews dropped" in msg


def test_train_split_empty_when_eval_fraction_too_high(tmp_path):
    fraction = 0.99
    texts = [t for t, _ in reviews(200) if data_mod._eval_bucket(t, fraction)][:3]
    assert len(texts) == 3
    path = write(tmp_path / "d.csv", csv_text([["text", "label"], *[[t, "1"] for t in texts]]))
    msg = error_of(prepare_inputs, DataSection(source=str(path), eval_fraction=fraction), tmp_path)
    assert "the train split is empty" in msg and "data.eval_fraction" in msg
    assert not (tmp_path / "inputs").exists() or not any((tmp_path / "inputs").iterdir())


# ------------------------------------------------------------------------------------ errors


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"text,label\nfine,1\nbroken \xff\xfe byte,0\nfine too,1\n")
    msg = read_error(path)
    assert msg.startswith(f"{path}, line 3:")
    assert "not valid utf-8" in msg and "data.encoding" in msg


def test_unbalanced_quote(tmp_path):
    path = write(
        tmp_path / "q.csv",
        'text,label\nfine,1\n"never closed, 0\nfine,0\nalso fine,1\nlast,0\n',
    )
    msg = read_error(path)
    # Where the broken record starts, not the end of the file where the reader gave up.
    assert msg.startswith(f"{path}, row 3: malformed CSV (read on to line 6): ")
    assert "unexpected end of data" in msg and "quote" in msg


def test_stray_quote_after_quoted_field(tmp_path):
    path = write(tmp_path / "q.csv", 'text,label\nfine,1\n"quoted" then more,0\n')
    msg = read_error(path)
    assert msg.startswith(f"{path}, row 3: malformed CSV")
    assert "must be doubled" in msg


def test_malformed_tsv_says_tsv(tmp_path):
    path = write(tmp_path / "q.tsv", 'text\tlabel\n"open\t1\n')
    msg = read_error(path)
    assert f"{path}, row 2: malformed TSV" in msg


def test_malformed_header(tmp_path):
    path = write(tmp_path / "h.csv", '"text" x,label\nfine,1\n')
    msg = read_error(path)
    assert msg.startswith(f"{path}, row 1: malformed header")


def test_wrong_column_count(tmp_path):
    path = write(tmp_path / "c.csv", "text,label\nfine,1\nan unquoted, comma,0\n")
    msg = read_error(path)
    assert msg.startswith(f"{path}, row 3: 3 fields, expected 2")
    assert "['text', 'label']" in msg and "quoting" in msg


def test_row_number_counts_from_record_start(tmp_path):
    body = 'text,label\n"a\nmulti-line\nreview",1\n"another\nmulti-line review",maybe\n'
    path = write(tmp_path / "m.csv", body)
    msg = read_error(path)
    assert msg.startswith(f"{path}, row 5, column 'label'")
    assert rows_of(write(tmp_path / "ok.csv", body.replace("maybe", "0")))[1][0] == 5


@pytest.mark.parametrize(
    "header,missing",
    [("review,label", "['text']"), ("text,score", "['label']"), ("a,b,c", "['text', 'label']")],
)
def test_missing_column_lists_header(tmp_path, header, missing):
    path = write(tmp_path / "m.csv", f"{header}\n" + ",".join(["x"] * header.count(",")) + ",1\n")
    msg = read_error(path)
    assert str(path) in msg
    assert f"missing column(s) {missing}" in msg
    assert f"the header has {header.split(',')}" in msg
    assert "data.text_column" in msg


def test_label_outside_mapping(tmp_path):
    path = write(tmp_path / "l.csv", "text,label\nfine,1\nnot sure,3\n")
    msg = read_error(path, labels={"0": 0, "1": 1})
    assert msg.startswith(f"{path}, row 3, column 'label': label '3' is not one of ['0', '1']")
    assert "data.labels" in msg


def test_empty_label_is_reported(tmp_path):
    path = write(tmp_path / "l.csv", "text,label\nno label here,\n")
    msg = read_error(path)
    assert f"{path}, row 2, column 'label': label ''" in msg


def test_empty_file(tmp_path):
    path = write(tmp_path / "e.csv", "")
    msg = read_error(path)
    assert msg == f"{path}: the file is empty; expected a header row"


def test_header_only_file(tmp_path):
    path = write(tmp_path / "h.csv", "text,label\n\n")
    msg = read_error(path)
    assert msg == f"{path}: no data rows after the header"


def test_missing_path(tmp_path):
    missing = tmp_path / "nope.csv"
    msg = error_of(resolve_sources, DataSection(source=str(missing)))
    assert msg == f"data.source {missing}: no such file or folder"

    ok = write(tmp_path / "ok.csv", "text,label\nfine,1\n")
    msg = error_of(resolve_sources, DataSection(source=str(ok), test_source=str(missing)))
    assert msg == f"data.test_source {missing}: no such file or folder"


def test_folder_without_csv_files(tmp_path):
    folder = tmp_path / "empty"
    write(folder / "readme.md", "text,label\nfine,1\n")
    write(folder / "notes.txt", "text,label\nfine,1\n")  # .txt only when named explicitly
    write(folder / "data.json", "{}")
    (folder / "nested.csv").mkdir()  # a folder named like a CSV is not a file
    msg = error_of(resolve_sources, DataSection(source=str(folder)))
    assert msg.startswith(f"data.source {folder}: the folder has no .csv")


def test_prepare_reports_errors_from_any_source(tmp_path):
    good = write(tmp_path / "good.csv", csv_text([["text", "label"], *reviews(10)]))
    bad = write(tmp_path / "bad.csv", "text,label\nheld out,2\n")
    msg = error_of(prepare_inputs, DataSection(source=str(good), test_source=str(bad)), tmp_path)
    assert msg.startswith(f"{bad}, row 2, column 'label': label '2'")
    assert not (tmp_path / "inputs").exists()


# ------------------------------------------------------------- documented handling of odd input


def test_a_one_megabyte_review_is_kept_whole(tmp_path):
    huge = "word " * 200_000  # 1 MB of text in one field
    path = write(tmp_path / "big.csv", csv_text([["text", "label"], [huge, "1"], *FILLER]))
    prepared = prepare_inputs(DataSection(source=str(path)), tmp_path / "work")
    rows = prepared_rows(prepared.root)
    kept = [t for split in rows.values() for t, _ in split if t.startswith("word word")]
    assert kept == [huge.strip()]  # Transform truncates later; the input loses nothing


def test_html_emoji_and_right_to_left_text_round_trip(tmp_path):
    texts = ["Great<br />film 😀👍", "סרט נהדר מאוד", "فيلم رائع جدا", "<i>dull</i> &amp; long"]
    path = write(
        tmp_path / "u.csv", csv_text([["text", "label"], *[[t, "1"] for t in texts], *FILLER])
    )
    prepared = prepare_inputs(DataSection(source=str(path)), tmp_path / "work")
    written = {t for split in prepared_rows(prepared.root).values() for t, _ in split}
    assert set(texts) <= written  # unchanged: HTML is stripped by Transform, not here


def test_duplicate_rows_are_kept_and_share_a_split(tmp_path):
    dup = ["the same review, twice", "0"]
    path = write(tmp_path / "d.csv", csv_text([["text", "label"], dup, *FILLER, dup]))
    prepared = prepare_inputs(DataSection(source=str(path)), tmp_path / "work")
    rows = prepared_rows(prepared.root)
    where = [s for s, split in rows.items() for t, _ in split if t == dup[0]]
    assert len(where) == 2 and where[0] == where[1]
