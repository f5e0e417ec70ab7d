"""Read a transaction log into the canonical frame (the data contract).

``read_transactions`` reads CSV, Parquet, a directory of Parquet (or CSV) files, or a glob, maps
the source columns onto the canonical names and returns a **LazyFrame** (lazy so a 10-million-row
log is read once, inside :func:`segmentation_lib.quality.clean_transactions`):

=========== ======================== ==========================================================
column      dtype                    notes
=========== ======================== ==========================================================
customer_id String or integer         stripped; ``"17850.0"`` (a float-typed id) becomes ``"17850"``;
                                     an integer column keeps its integer type
timestamp   Datetime("us", "UTC")    naive values are read in ``timezone``; offsets converted
amount      Float64                  derived as quantity * unit_price when ``amount`` is unmapped
order_id    String/integer (opt.)    also normalised like customer_id
product_id  String (optional)
quantity    Float64 (optional)
unit_price  Float64 (optional)
=========== ======================== ==========================================================

Extra source columns are kept unchanged (CSV has no types, so CSV extras stay text). Values that
cannot be parsed become null and their raw text is kept in helper columns (``_raw_timestamp``,
``_raw_amount``, ``_tz``, see :data:`HELPER_COLUMNS`) so the quality step can count them and show
examples; ``clean_transactions`` drops the helpers. Naive local times that do not exist (the
hour skipped when clocks go forward) become null, ambiguous ones (clocks going back) take the
earlier instant.

>>> lf = read_transactions("log.csv", columns={"customer_id": "CustomerID",  # doctest: +SKIP
...     "timestamp": "InvoiceDate", "amount": None, "quantity": "Quantity", "unit_price": "UnitPrice"})
>>> lf = read_transactions("Online Retail.csv", preset="online_retail")  # doctest: +SKIP

Bad input (missing/empty/unreadable file, unknown column, text where numbers are expected,
non-UTF-8 CSV, a date format that matches nothing) raises :class:`~segmentation_lib.errors.DataError`
with a one-paragraph message naming the file, the column and the fix.
"""
from __future__ import annotations

import codecs
import csv
import difflib
import errno
import functools
import glob as globmod
import io
import os
import re
import stat
import string
import warnings
import zoneinfo
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from segmentation_lib.config import PLAUSIBLE_YEARS
from segmentation_lib.errors import ConfigError, DataError


CANONICAL = ("customer_id", "timestamp", "amount", "order_id", "product_id", "quantity", "unit_price")
#: optional purchase-mix columns of ``data.columns`` (features/purchase_mix.py): read only when mapped
MIX_COLUMNS = ("category", "discount", "list_price")
REQUIRED = ("customer_id", "timestamp", "amount")
HELPER_COLUMNS = ("_raw_timestamp", "_raw_amount", "_tz")
TS_DTYPE = pl.Datetime("us", "UTC")

# Formats tried (on a sample) when no date_format is given; ISO first, then US, then European.
NAIVE_FORMATS = (  # "%S" before "%S%.f": polars has a much faster path for the former
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d",
    "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y",
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y",
    "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y",
    "%Y%m%d",
)
AWARE_FORMATS = ("%Y-%m-%d %H:%M:%S%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%d %H:%M%z")
_OFFSET_RE = r"\d:\d\d(?::\d\d(?:\.\d+)?)?\s*([+-]\d\d(?::?\d\d)?)$"
_USER_OFFSET_RE = r"([+-]\d\d:?\d\d|Z)$"
_SAMPLE_ROWS = 5000
NULL_TOKENS = ("", "nan", "NaN", "None", "none", "NULL", "null")


@dataclass(frozen=True)
class Preset:
    """A known file layout: alternative column mappings told apart by their header.

    >>> PRESETS["online_retail"].detect(["Invoice", "StockCode", "Price", "Customer ID", "InvoiceDate", "Quantity"])
    'online_retail_ii'
    """

    name: str
    layouts: dict[str, dict[str, str | None]]
    cancellation_prefix: str | None = None
    description: str = ""
    signatures: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def detect(self, header: list[str]) -> str | None:
        """Name of the first layout whose signature columns are all in ``header``."""
        present = set(header)
        for name, sig in self.signatures.items():
            if set(sig) <= present:
                return name
        return None


PRESETS: dict[str, Preset] = {
    "online_retail": Preset(
        name="online_retail",
        description='UCI "Online Retail" (2010-2011) and "Online Retail II" (2009-2011); '
        'invoices starting with "C" are cancellations.',
        layouts={
            "online_retail": {
                "customer_id": "CustomerID", "timestamp": "InvoiceDate", "amount": None,
                "order_id": "InvoiceNo", "product_id": "StockCode", "quantity": "Quantity",
                "unit_price": "UnitPrice",
            },
            "online_retail_ii": {
                "customer_id": "Customer ID", "timestamp": "InvoiceDate", "amount": None,
                "order_id": "Invoice", "product_id": "StockCode", "quantity": "Quantity",
                "unit_price": "Price",
            },
        },
        signatures={
            "online_retail": ("InvoiceNo", "UnitPrice", "CustomerID"),
            "online_retail_ii": ("Invoice", "Price", "Customer ID"),
        },
        cancellation_prefix="C",
    )
}


# --------------------------------------------------------------------------- source files


@dataclass
class _Source:
    label: str  # what messages call the input
    kind: str  # "csv" | "parquet"
    files: list[Path]
    separator: str = ","
    header: list[str] = field(default_factory=list)


def _fail(label: str, what: str, fix: str) -> DataError:
    return DataError(f"{label}: {what} Fix: {fix}")


def _resolve(source: str | Path) -> tuple[str, list[Path]]:
    text = str(source)
    if any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in globmod.glob(text, recursive=True) if Path(p).is_file())
        if not files:
            raise _fail(text, "no file matches this pattern.",
                        "check the path in data.path (relative paths start at the current directory).")
        return text, files
    path = Path(text)
    if path.is_symlink() and not path.exists():
        target = _link_target(path)
        raise _fail(text, f"is a symbolic link that leads nowhere ({target}).",
                    "point data.path at the real file, or repair the link (ls -l shows where it points).")
    if not path.exists():
        parent = path.parent if str(path.parent) else Path(".")
        near = difflib.get_close_matches(path.name, [p.name for p in parent.glob("*")], n=1) if parent.is_dir() else []
        hint = f" Did you mean '{parent / near[0]}'?" if near else ""
        raise _fail(text, f"file not found (looked in {path.resolve().parent}).{hint}",
                    "check data.path, or run `segment demo-data` to create the demo data.")
    if path.is_dir():
        return text, _folder_files(path)
    if not path.is_file():
        raise _fail(text, f"is not a regular file (it is {_file_type(path)}); reading it could wait forever.",
                    "export the data to a file first and point data.path at that file.")
    return text, [path]


#: suffixes of the data files a folder is searched for (other files, e.g. README.md, are not data)
DATA_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv",
                 ".xlsx": "Excel", ".xls": "Excel", ".json": "JSON", ".gz": "csv", ".zst": "csv", ".zip": "csv"}  # (compressed CSV)


def _folder_files(path: Path) -> list[Path]:
    """The data files of a folder, all of one kind: Parquet or CSV; a mix raises (never half of the data).

    >>> _folder_files(Path("data/demo"))  # doctest: +SKIP
    [PosixPath('data/demo/customers.parquet'), PosixPath('data/demo/transactions.parquet'), ...]
    """
    by_kind: dict[str, list[Path]] = {}
    for p in sorted(path.rglob("*")):
        kind = DATA_SUFFIXES.get(p.suffix.lower())
        if kind and p.is_file() and not p.name.startswith((".", "_")):
            by_kind.setdefault(kind, []).append(p)
    if not by_kind:
        raise _fail(str(path), "the directory holds no .parquet or .csv files.",
                    "point data.path at a file, a directory of Parquet files or a glob such as 'data/*.parquet'.")
    if len(by_kind) > 1:
        listing = "; ".join(f"{kind}: {_names(files, path)}" for kind, files in sorted(by_kind.items()))
        raise _fail(str(path), f"the directory mixes data files of different kinds ({listing}); reading only one "
                    "kind would silently leave out the rows of the others.",
                    "put files of one format in the folder (convert the others, e.g. CSV to Parquet), or point "
                    "data.path at a glob of one kind such as 'folder/*.parquet'.")
    kind, files = by_kind.popitem()
    if kind not in ("parquet", "csv"):
        raise _fail(str(path), f"the directory holds {kind} files ({_names(files, path)}), which are not read.",
                    "save the data as CSV (UTF-8) or Parquet files.")
    return files


def _names(files: list[Path], root: Path, limit: int = 5) -> str:
    """``a.csv, b.csv, ... (12 files)``: file names relative to ``root``, at most ``limit`` of them."""
    shown = ", ".join(str(p.relative_to(root)) for p in files[:limit])
    return shown + (f", ... ({len(files)} files)" if len(files) > limit else "")


def _link_target(path: Path) -> str:
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 raises RuntimeError on a loop
        return "a loop of links"
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "a loop of links"
    try:
        return f"to the missing '{os.readlink(path)}'"
    except OSError:
        return "to a missing file"


def _file_type(path: Path) -> str:
    mode = path.stat().st_mode
    for test, name in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


#: what the first bytes of a file say it is (checked before the file's name is believed)
MAGIC = (
    (b"PAR1", "parquet"),
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or another zip archive"),
    (b"\xd0\xcf\x11\xe0", "an Excel 97-2003 workbook (.xls)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file"),
    (b"\xff\xfe", "UTF-16 text"), (b"\xfe\xff", "UTF-16 text"),
)
_EXCEL_FIX = ("open it and save the sheet as CSV (UTF-8), or convert it with "
              "`python -c \"import pandas as pd; pd.read_excel('in.xlsx').to_csv('out.csv', index=False)\"`.")


def sniff(path: Path) -> str | None:
    """What a file's first bytes say it is (``"parquet"``, ``"UTF-16 text"``, ...), or None for plain text.

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "x.csv"; _ = p.write_bytes(b"PK\x03\x04...")
    >>> sniff(p)
    'an Excel workbook (.xlsx) or another zip archive'
    """
    with path.open("rb") as fh:
        head = fh.read(4)
    return next((what for magic, what in MAGIC if head.startswith(magic)), None)


def _kind(path: Path) -> str:
    """"parquet", "excel", "gzip", "zstd", "zip" or "csv": what the file's first bytes (then its name) say."""
    suffix = path.suffix.lower()
    what = sniff(path)
    if what == "parquet":
        return "parquet"
    if what == "an Excel workbook (.xlsx) or another zip archive":
        return "excel" if _is_workbook(path) else "zip"
    if suffix in (".xlsx", ".xls") or (what and "Excel" in what):
        return "excel"
    if what == "a gzip-compressed file":
        return "gzip"
    if what == "a zstd-compressed file":
        return "zstd"
    if suffix in (".parquet", ".pq"):
        return "parquet"  # (not PAR1: the Parquet reader names the damage)
    return "csv"


def _is_workbook(path: Path) -> bool:
    """Whether a zip archive is an Excel workbook (it holds ``xl/workbook.xml``); a damaged zip counts as one."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return any(n.startswith("xl/") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return path.suffix.lower() != ".zip"


_UNPACKED: dict[Path, Path] = {}  # compressed file -> its decompressed CSV (kept for the process: scans are lazy)


def _unpack(path: Path, kind: str) -> Path:
    """The decompressed CSV of a ``.csv.gz`` / ``.csv.zst`` file or a ``.zip`` holding one CSV (a temporary
    file, decompressed in streaming chunks, so a large log never sits in memory twice).

    >>> _unpack(Path("tx.csv.gz"), "gzip")  # doctest: +SKIP
    PosixPath('/tmp/segment-unpacked-.../tx.csv')
    """
    if path in _UNPACKED and _UNPACKED[path].exists():
        return _UNPACKED[path]
    import atexit
    import shutil
    import tempfile
    import zipfile

    import pyarrow as pa

    folder = Path(tempfile.mkdtemp(prefix="segment-unpacked-"))
    atexit.register(shutil.rmtree, folder, True)
    stem = path.name[: -len(path.suffix)] if path.suffix.lower() in (".gz", ".zst", ".zstd", ".zip") else path.name
    out = folder / (stem if Path(stem).suffix else stem + ".csv")
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as z:
                members = [i for i in z.infolist() if not i.is_dir() and not i.filename.startswith(("__MACOSX/", "."))]
                if len(members) != 1:
                    names = ", ".join(i.filename for i in members[:5]) or "nothing"
                    raise _fail(str(path), f"the zip archive holds {len(members)} files ({names}); one CSV is read "
                                "from an archive.", "put one CSV in the archive, or unzip it and point data.path "
                                "at the folder or a glob of the CSV files.")
                with z.open(members[0]) as src, out.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 22)
        else:
            with pa.input_stream(str(path), compression="gzip" if kind == "gzip" else "zstd") as src, \
                    out.open("wb") as dst:
                while chunk := src.read(1 << 22):
                    dst.write(chunk)
    except DataError:
        raise
    except (OSError, zipfile.BadZipFile, pa.ArrowException) as err:
        tool = {"gzip": "gunzip -t", "zstd": "zstd -t", "zip": "unzip -t"}[kind]
        raise _fail(str(path), f"the file is {'a zip archive' if kind == 'zip' else f'a {kind}-compressed file'} "
                    f"that cannot be decompressed ({str(err).splitlines()[0][:160]}); it may be truncated.",
                    f"check it with `{tool} '{path.name}'`, or export it again; "
                    f"or decompress it yourself (e.g. `gunzip -k '{path.name}'`) and point data.path at the result.") from None
    _UNPACKED[path] = out
    return out


def _read_workbook(path: Path, sheet: str | int | None) -> pl.DataFrame:
    """One sheet of an Excel workbook (``.xlsx``, ``.xls``) through polars' reader (calamine engine).

    ``sheet`` is a sheet name, a 1-based sheet number, or None for the first sheet.

    >>> _read_workbook(Path("Online Retail.xlsx"), "Online Retail")  # doctest: +SKIP
    """
    try:
        import fastexcel
    except ImportError:
        raise _fail(str(path), "the file is an Excel workbook and the Excel reader (fastexcel) is not installed.",
                    "install the kit with its dependencies (`pip install -e .` or `pip install fastexcel`), or save "
                    "the sheet as CSV (UTF-8).") from None
    try:
        names = fastexcel.read_excel(str(path)).sheet_names
    except Exception as err:  # damaged / not a workbook
        what = sniff(path) or "an Excel workbook"
        raise _fail(str(path), f"the file is {what} that cannot be opened ({str(err).splitlines()[0][:160]}).",
                    "open it in Excel and save it again, or " + _EXCEL_FIX) from None
    if sheet is None:
        which: dict = {"sheet_id": 1}
    elif isinstance(sheet, int) or str(sheet).isdigit():
        if not 1 <= int(sheet) <= len(names):
            raise _fail(str(path), f"data.sheet {sheet} is not a sheet number (the workbook has {len(names)} "
                        f"sheet(s): {', '.join(names)}).", "set data.sheet to a sheet name or a number from 1.")
        which = {"sheet_id": int(sheet)}
    elif sheet not in names:
        raise _fail(str(path), f"the workbook has no sheet '{sheet}' (its sheets: {', '.join(names)}).",
                    "set data.sheet to one of the sheet names (or null for the first sheet).")
    else:
        which = {"sheet_name": str(sheet)}
    df = pl.read_excel(path, engine="calamine", infer_schema_length=None, **which)
    if df.height == 0:
        raise _fail(str(path), f"the sheet {sheet or names[0]!r} holds no data rows.",
                    "set data.sheet to the sheet with the data, or export it again with its rows.")
    return df


def _check_utf8(path: Path) -> None:
    """Raise a DataError naming the line of the first byte that is not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    lines = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 24):
            try:
                decoder.decode(chunk, final=False)
            except UnicodeDecodeError as err:
                pos = err.start
                line = lines + chunk.count(b"\n", 0, pos) + 1
                bad = chunk[max(0, pos - 20): pos + 20]
                guess = "Windows-1252 / Latin-1"
                try:
                    bad.decode("cp1252")
                except UnicodeDecodeError:
                    guess = "an 8-bit encoding"
                raise _fail(
                    str(path),
                    f"the file is not UTF-8 (byte 0x{chunk[pos]:02x} at byte {offset + pos}, line {line}: "
                    f"{bad!r}); it looks like {guess}.",
                    f"re-encode it, e.g. `iconv -f cp1252 -t utf-8 '{path.name}' > fixed.csv`, or set "
                    "data.encoding to the file's encoding (for example 'cp1252'), or to 'utf8-lossy' to "
                    "replace the bad bytes.",
                ) from None
            offset += len(chunk)
            lines += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise _fail(str(path), "the file is not UTF-8 (it ends inside a multi-byte character).",
                    "re-encode it as UTF-8 (e.g. with iconv) or set data.encoding.") from None


def _csv_header(path: Path, encoding: str) -> tuple[list[str], str]:
    """Header columns and separator of a CSV; raises DataError when empty or header-only."""
    size = path.stat().st_size
    if size == 0:
        raise _fail(str(path), "the file is empty (0 bytes).", "export the data again; the file holds nothing.")
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    native = encoding.lower().replace("-", "") in ("utf8", "utf8lossy")
    if native and b"\x00" in head:
        n = head.count(b"\x00")
        raise _fail(str(path), f"the file holds NUL bytes ({n:,} in its first {len(head):,} bytes), so it is not "
                    "CSV text: it is a binary file, or text in UTF-16/UTF-32.",
                    "export the data as CSV (UTF-8); for UTF-16 text set data.encoding: utf-16.")
    enc = "utf-8" if native else encoding
    text = head.decode(enc, errors="replace")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise _fail(str(path), "the file holds only blank lines.", "export the data again.")
    first = lines[0]
    separator = max([",", ";", "\t", "|"], key=first.count)
    if first.count(separator) == 0:
        separator = ","
    header = next(csv.reader(io.StringIO(first), delimiter=separator))
    header = [h.strip().lstrip("\ufeff") for h in header]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise _fail(str(path), f"the header names the column(s) {columns_text(repeated)} more than once; only one of "
                    "each could be read and the other would be silently dropped.",
                    "give every column of the header its own name and export again.")
    filler = string.whitespace + '"' + separator
    rows = [ln for ln in lines[1:] if ln.strip(filler)]
    if not rows and (size <= len(head) or not _has_data_after_header(path, separator)):
        raise _fail(str(path), f"the file has a header ({columns_text(header, 8)}) but no data rows"
                    + ("" if size <= len(head) else f" (after the header its {size:,} bytes hold only blank lines or empty fields)")
                    + ".", "export the data again with its rows.")
    return header, separator


def _has_data_after_header(path: Path, separator: str) -> bool:
    """Whether any byte after the header line is more than a line break, blank, quote or ``separator``.

    Stops at the first such byte (at once for a real file); a header followed by megabytes of empty
    lines or empty fields is read only once, in chunks, without parsing.
    """
    filler = re.compile(rb"[^\s\"" + re.escape(separator.encode()) + rb"]")
    with path.open("rb") as fh:
        fh.readline()  # the header
        while chunk := fh.read(1 << 22):
            if filler.search(chunk):
                return True
    return False


def columns_text(names: list[str], limit: int = 20, width: int = 32) -> str:
    """Column names for a message: at most ``limit`` of them, each cut to ``width`` characters, odd
    characters escaped (a header of binary junk must not become a 65 KB message).

    >>> columns_text(["a", "b", "c"], limit=2)
    'a, b, ... (3 columns)'
    """
    def one(n: str) -> str:
        shown = n.encode("unicode_escape").decode("ascii") if not n.isprintable() else n
        return shown if len(shown) <= width else shown[: width - 3] + "..."

    text = ", ".join(one(n) for n in names[:limit])
    return text + (f", ... ({len(names):,} columns)" if len(names) > limit else "")


def _open_source(source: str | Path, encoding: str, sheet: str | int | None = None) -> tuple[_Source, pl.LazyFrame]:
    label, files = _resolve(source)
    by_file = {p: _kind(p) for p in files}
    shown = {"gzip": "csv", "zstd": "csv", "zip": "csv"}
    kinds = {shown.get(k, k) for k in by_file.values()}
    if len(kinds) > 1:
        listing = "; ".join(f"{p.name}: {k}" for p, k in list(by_file.items())[:6])
        raise _fail(label, f"the files mix formats ({listing}); reading only some would leave out rows.",
                    "point data.path at files of one format.")
    kind = kinds.pop()
    if kind == "excel":
        if len(files) > 1:
            raise _fail(label, f"{len(files)} Excel workbooks match; one workbook is read at a time.",
                        "point data.path at one workbook (and data.sheet at its sheet).")
        df = _read_workbook(files[0], sheet)
        df = df.rename({c: str(c).strip().lstrip("\ufeff") for c in df.columns})
        return _Source(label=label, kind="excel", files=files, header=list(df.columns)), df.lazy()
    unpacked = {p: _unpack(p, k) for p, k in by_file.items() if k in shown}
    if unpacked:
        try:
            src, lf = _open_source_files(label, kind, [unpacked.get(p, p) for p in files], encoding)
        except DataError as err:  # messages name the user's file, not the temporary copy
            text = str(err)
            for p, tmp in unpacked.items():
                text = text.replace(str(tmp), str(p))
            raise DataError(text) from None
        return src, lf
    return _open_source_files(label, kind, files, encoding)


def _open_source_files(label: str, kind: str, files: list[Path], encoding: str) -> tuple[_Source, pl.LazyFrame]:
    src = _Source(label=label, kind=kind, files=files)
    if kind == "parquet":
        import pyarrow.parquet as pq

        rows = 0
        for p in files:
            try:
                meta = pq.ParquetFile(p).metadata
            except Exception as err:  # corrupted / truncated / not parquet
                raise _fail(str(p), f"cannot be read as Parquet ({str(err).splitlines()[0]}).",
                            "write the file again (it may be truncated) or give a CSV.") from None
            rows += meta.num_rows
        if rows == 0:
            raise _fail(label, "the Parquet data has no rows.", "check the export; the file(s) are empty.")
        lf = pl.scan_parquet([str(p) for p in files])
        src.header = list(lf.collect_schema().names())
        return src, lf
    lossy = encoding.lower().replace("-", "") == "utf8lossy"
    native = encoding.lower().replace("-", "") in ("utf8", "utf8lossy")
    header = sep = None
    for p in files:
        if native and sniff(p) == "UTF-16 text":
            raise _fail(str(p), "the file is UTF-16 text (it starts with a UTF-16 byte-order mark), not UTF-8.",
                        f"set data.encoding: utf-16, or re-encode it: `iconv -f utf-16 -t utf-8 '{p.name}' > fixed.csv`.")
        if native and not lossy:
            _check_utf8(p)
        h, s = _csv_header(p, encoding)
        if header is not None and h != header:
            raise _fail(str(p), f"its columns ({columns_text(h)}) differ from those of {files[0].name} "
                        f"({columns_text(header)}).", "read files with the same header together, or fix the header.")
        header, sep = (h, s) if header is None else (header, sep)
    src.header, src.separator = header, sep
    if native:
        lf = pl.scan_csv([str(p) for p in files], separator=sep, infer_schema=False,
                         encoding="utf8-lossy" if lossy else "utf8", truncate_ragged_lines=True)
    else:
        try:
            frames = [pl.read_csv(p, separator=sep, infer_schema=False, encoding=encoding) for p in files]
        except LookupError:
            raise ConfigError(f"data.encoding: unknown encoding '{encoding}'. Fix: use a Python codec name "
                              "such as 'utf8', 'cp1252' or 'latin-1', or 'utf8-lossy'.") from None
        lf = pl.concat(frames).lazy()
    lf = lf.rename({c: c.strip().lstrip("\ufeff") for c in lf.collect_schema().names()})
    return src, lf


def polars_error_message(err: BaseException, where: str) -> str:
    """One-paragraph DataError text for a polars failure while reading ``where``."""
    text = " ".join(str(err).split())
    for hint in (" The current offset", " You might want to try", " Original error"):
        text = text.split(hint)[0]  # polars' advice is about its API, not the user's file
    first = text[:240] + ("..." if len(text) > 240 else "")
    if "utf-8" in text.lower() or "utf8" in text.lower():
        return (f"{where}: the file is not valid UTF-8 ({first}). Fix: re-encode it as UTF-8 (e.g. "
                "`iconv -f cp1252 -t utf-8 in.csv > out.csv`) or set data.encoding.")
    return (f"{where}: the data could not be parsed ({first}). Fix: check that the file is a complete CSV/Parquet "
            "export with one header row, the same number of fields on every line and properly closed quotes.")


@contextmanager
def _readable(where: str) -> Iterator[None]:
    """Turn polars' parse errors into a DataError naming the file."""
    try:
        yield
    except pl.exceptions.PolarsError as err:
        raise DataError(polars_error_message(err, where)) from None


# --------------------------------------------------------------------------- mapping


def _closest(name: str, header: list[str]) -> str:
    lower = {h.lower(): h for h in header}
    if name.lower() in lower:
        return lower[name.lower()]
    near = difflib.get_close_matches(name, header, n=1, cutoff=0.5)
    if not near:
        near = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.5)
        near = [lower[n] for n in near]
    return near[0] if near else ""


def _missing_column(src: _Source, canonical: str, name: str, key: str = "data.columns") -> DataError:
    guess = _closest(name, src.header)
    hint = f" The closest is '{guess}'." if guess else ""
    layouts = [key for key, preset in PRESETS.items() if preset.detect(src.header)]
    if layouts:
        hint += f" The header matches the '{layouts[0]}' preset: set data.preset: {layouts[0]} (or --preset {layouts[0]})."
    if src.kind == "excel" or Path(src.label).suffix.lower() in (".xlsx", ".xls"):  # one sheet: the data may be on another
        hint += " These are the columns of one sheet of the workbook (the first unless data.sheet names one); if the data is on another sheet, set data.sheet."
    return _fail(
        src.label,
        f"column '{name}' (mapped to '{canonical}') does not exist. The file's columns are: "
        f"{columns_text(src.header)}.{hint}",
        f"set {key}.{canonical} to one of these columns"
        + (" (or to null if the file has none)." if canonical not in REQUIRED else "."),
    )


#: header names (lower case, without spaces, underscores and dashes) that usually hold each canonical column
COLUMN_SYNONYMS: dict[str, tuple[str, ...]] = {
    "customer_id": ("customerid", "customer", "custid", "clientid", "client", "memberid", "member", "userid",
                    "user", "accountid", "account", "householdkey", "household", "buyerid", "shopperid"),
    "timestamp": ("timestamp", "invoicedate", "orderdate", "transactiondate", "purchasedate", "datetime", "date",
                  "time", "createdat", "orderedat", "saledate", "ts"),
    "amount": ("amount", "total", "revenue", "sales", "salesvalue", "value", "spend", "netamount", "totalprice",
               "ordervalue", "linetotal", "grossamount", "monetaryvalue"),
    "order_id": ("orderid", "order", "invoiceno", "invoice", "invoiceid", "transactionid", "basketid", "receiptid",
                 "orderno", "ordernumber", "ticketid"),
    "product_id": ("productid", "product", "stockcode", "sku", "itemid", "item", "articleid", "article"),
    "quantity": ("quantity", "qty", "units", "unitqty", "count"),
    "unit_price": ("unitprice", "price", "itemprice", "priceperunit"),
}


def read_header(source: str | Path, encoding: str = "utf8") -> list[str]:
    """The column names of a CSV or Parquet file (folder, glob), as :func:`read_transactions` sees them.

    >>> read_header("data/demo/transactions.parquet")  # doctest: +SKIP
    ['customer_id', 'timestamp', 'order_id', 'product_id', 'quantity', 'amount']
    """
    src, _ = _open_source(source, encoding)
    return list(src.header)


def guess_columns(header: list[str]) -> tuple[dict[str, str | None], str | None]:
    """The column mapping guessed from a header: ``(data.columns, preset)``.

    A header of a known layout gives its preset (and an empty mapping). Otherwise each canonical
    column takes the first header name equal to it or to one of its :data:`COLUMN_SYNONYMS`
    (compared in lower case without spaces, ``_`` and ``-``), each header name used once; a
    column with no match is None, and ``amount`` is None when quantity and unit price are found
    instead (amount = quantity x unit price). Only a guess: shown to the user for confirmation.

    >>> guess_columns(["Member", "Order Date", "Order No", "Qty", "Price"])
    ({'customer_id': 'Member', 'timestamp': 'Order Date', 'amount': None, 'order_id': 'Order No', 'product_id': None, 'quantity': 'Qty', 'unit_price': 'Price'}, None)
    """
    for name, preset in PRESETS.items():
        if preset.detect(header):
            return {}, name
    key = {h: "".join(ch for ch in h.lower() if ch not in " _-") for h in header}
    used: set[str] = set()
    mapping: dict[str, str | None] = {}
    for canonical in CANONICAL:
        wanted = (canonical.replace("_", ""), *COLUMN_SYNONYMS.get(canonical, ()))
        match = next((h for w in wanted for h in header if h not in used and key[h] == w), None)
        mapping[canonical] = match
        if match:
            used.add(match)
    return mapping, None


def resolve_mapping(
    header: list[str], columns: Mapping[str, str | None] | None, label: str = "input"
) -> dict[str, str | None]:
    """Canonical name -> source column (None = absent), checked against the header.

    A required column that is missing raises DataError (listing the columns and the closest match);
    an optional column mapped to its own canonical name (the default) is silently absent.

    >>> resolve_mapping(["cid", "ts", "qty", "price"], {"customer_id": "cid", "timestamp": "ts",
    ...     "amount": None, "quantity": "qty", "unit_price": "price"})["amount"] is None
    True
    """
    src = _Source(label=label, kind="", files=[], header=list(header))
    if columns is None:
        columns = {c: c for c in CANONICAL}
    columns = {k: v for k, v in columns.items() if k not in MIX_COLUMNS}  # purchase mix: mix_mapping
    unknown = sorted(set(columns) - set(CANONICAL))
    if unknown:
        raise ConfigError(f"data.columns: unknown key(s) {', '.join(unknown)}. Fix: use only "
                          f"{', '.join(CANONICAL)} (canonical name -> column in the file).")
    present = set(header)
    mapping: dict[str, str | None] = {}
    for canonical in CANONICAL:
        name = columns.get(canonical, canonical)  # a key left out means "same name, if present"
        if name is None:
            mapping[canonical] = None
            continue
        name = str(name)
        if name in present:
            mapping[canonical] = name
        elif canonical in REQUIRED and not (canonical == "amount" and name == "amount"):
            raise _missing_column(src, canonical, name)
        elif name == canonical:
            mapping[canonical] = None  # default identity mapping, column simply absent
        else:
            raise _missing_column(src, canonical, name)
    by_source: dict[str, list[str]] = {}
    for canonical, name in mapping.items():
        if name:
            by_source.setdefault(name, []).append(canonical)
    shared = {name: keys for name, keys in by_source.items() if len(keys) > 1}
    if shared:
        listing = "; ".join(f"'{name}' is mapped to {' and '.join(keys)}" for name, keys in shared.items())
        raise ConfigError(f"{label}: data.columns maps one source column to several canonical columns ({listing}); "
                          "each canonical column needs its own source column (the customer column as order_id would "
                          "make every customer's purchases one order). Fix: map each of them to a different column "
                          "of the file, or set the optional one (order_id, product_id, quantity, unit_price) to null.")
    if mapping["amount"] is None and not (mapping["quantity"] and mapping["unit_price"]):
        want = columns.get("amount", "amount")
        if want:
            raise _missing_column(src, "amount", str(want))
        raise _fail(label, "no amount: data.columns.amount is null and quantity / unit_price are not both mapped. "
                    f"The file's columns are: {columns_text(header)}.",
                    "map data.columns.amount, or both data.columns.quantity and data.columns.unit_price.")
    return mapping


# --------------------------------------------------------------------------- expressions


def normalize_id(expr: pl.Expr) -> pl.Expr:
    """Strip an id string and turn float-looking ids (``"17850.0"``) into ``"17850"``.

    >>> pl.select(normalize_id(pl.lit(" 17850.0 "))).item()
    '17850'
    """
    return expr.str.strip_chars().str.replace(r"^(-?\d+)\.0*$", "${1}")


def _id_expr(name: str, dtype: pl.DataType, out: str, float_like: bool = True) -> pl.Expr:
    col = pl.col(name)
    if dtype.is_float():
        integral = col.is_finite() & (col == col.round(0))
        return (pl.when(integral).then(col.cast(pl.Int64, strict=False).cast(pl.String))
                .otherwise(col.cast(pl.String))).alias(out)
    if dtype == pl.String:
        return (normalize_id(col) if float_like else col.str.strip_chars()).alias(out)
    if dtype.is_integer():  # integer ids stay integers (the outputs keep the source's id type)
        return col.alias(out)
    return col.cast(pl.String).alias(out)


def _float_like_ids(lf: pl.LazyFrame, name: str, dtype: pl.DataType) -> bool:
    """Whether the first rows of a text id column hold float-formatted ids such as "17850.0".

    The regex that normalises them costs ~0.4 s per 10M rows, so it runs only when needed.
    """
    if dtype != pl.String:
        return False
    sample = lf.select(pl.col(name)).head(_SAMPLE_ROWS).collect().to_series()
    return bool(sample.str.strip_chars().str.contains(r"^-?\d+\.0*$").any())


#: currency symbols, spaces (also no-break and thin spaces) and three-letter codes ("EUR") around an amount
CURRENCY_RE = r"[\s\p{Sc}]+|\b[A-Z]{3}\b"
DECIMALS = (".", ",")
THOUSANDS = (None, ",", ".", " ", "'")


def parse_number(expr: pl.Expr, symbols: bool = True, decimal: str = ".", thousands: str | None = None) -> pl.Expr:
    """Text -> Float64; unparseable or non-finite -> null. ``symbols`` removes currency symbols, codes
    and inner spaces first (a regex: skipped when a sample of the column does not need it);
    ``thousands`` is removed and ``decimal`` read as the decimal point (literal replacements).

    >>> pl.select(parse_number(pl.lit(" $12.50"))).item()
    12.5
    >>> pl.select(parse_number(pl.lit("1.234,50 EUR"), decimal=",", thousands=".")).item()
    1234.5
    """
    text = expr.str.replace_all(CURRENCY_RE, "") if symbols else expr.str.strip_chars()
    if thousands:
        text = text.str.replace_all(thousands, "", literal=True)
    if decimal != ".":
        text = text.str.replace_all(decimal, ".", literal=True)
    num = text.cast(pl.Float64, strict=False)
    return pl.when(num.is_finite()).then(num)


def check_number_format(decimal: str, thousands: str | None) -> None:
    """Raise ConfigError for an unknown ``data.decimal`` / ``data.thousands`` pair.

    >>> check_number_format(",", ",")
    Traceback (most recent call last):
    ...
    segmentation_lib.errors.ConfigError: data.decimal and data.thousands are both ','. Fix: use different characters, e.g. decimal ',' with thousands '.' (1.234,50) or decimal '.' with thousands ',' (1,234.50).
    """
    if decimal not in DECIMALS:
        raise ConfigError(f"data.decimal: '{decimal}' is not a decimal separator. Fix: use '.' or ','.")
    if thousands not in THOUSANDS:
        raise ConfigError(f"data.thousands: '{thousands}' is not a thousands separator. Fix: use null, ',', '.', "
                          "' ' or \"'\".")
    if thousands == decimal:
        raise ConfigError(f"data.decimal and data.thousands are both '{decimal}'. Fix: use different characters, "
                          "e.g. decimal ',' with thousands '.' (1.234,50) or decimal '.' with thousands ',' (1,234.50).")


#: patterns of regional numbers (after currency symbols are removed) -> the settings that read them
REGIONAL = (
    (r"^[+-]?\d{1,3}(?:,\d{3})+\.\d+$", "data.thousands: ','", "1,234.50"),
    (r"^[+-]?\d{1,3}(?:\.\d{3})+,\d+$", "data.decimal: ',' and data.thousands: '.'", "1.234,50"),
    (r"^[+-]?\d+,\d{1,2}$|^[+-]?\d+,\d{4,}$|^[+-]?0,\d+$", "data.decimal: ','", "12,50"),
    (r"^[+-]?\d{1,3}(?:'\d{3})+(?:\.\d+)?$", "data.thousands: \"'\"", "1'234.50"),
    (r"^[+-]?\d{1,3}(?:,\d{3})+$", "data.thousands: ',' (or data.decimal: ',' if ',' is the decimal point)", "1,234"),
    (r"^[+-]?\d{1,3}(?:\.\d{3}){2,}$", "data.thousands: '.'", "1.234.567"),
)


def regional_format(values: pl.Series) -> tuple[str, int, str] | None:
    """(settings, count, example) of the regional number pattern most of ``values`` (text that does not
    parse as plain numbers) follow, or None.

    >>> regional_format(pl.Series(["$1,234.50", "12,000.00"]))
    ("data.thousands: ','", 2, '$1,234.50')
    """
    if values.len() == 0:
        return None
    bare = pl.select(pl.lit(values).str.replace_all(CURRENCY_RE, "")).to_series()
    counts = [(setting, int(bare.str.contains(pattern).sum()), pattern) for pattern, setting, _ in REGIONAL]
    setting, count, pattern = max(counts, key=lambda c: c[1])
    if count == 0:
        return None
    return setting, count, str(values.filter(bare.str.contains(pattern))[0])


def _number_expr(name: str, dtype: pl.DataType, symbols: bool = True, decimal: str = ".",
                 thousands: str | None = None) -> pl.Expr:
    col = pl.col(name)
    if dtype == pl.String:
        return parse_number(col, symbols, decimal, thousands)
    num = col.cast(pl.Float64, strict=False)
    return pl.when(num.is_finite()).then(num)


def _normalize_ts_text(expr: pl.Expr) -> pl.Expr:
    return (expr.str.strip_chars().str.replace("T", " ", literal=True)
            .str.replace(r"(?i)\s*(?:Z|UTC|GMT)$", "+00:00"))


def _coalesce_parse(text: pl.Expr, formats: tuple[str, ...] | list[str]) -> pl.Expr:
    parsed = [text.str.to_datetime(f, strict=False, time_unit="us", cache=False) for f in formats]
    return parsed[0] if len(parsed) == 1 else pl.coalesce(parsed)


def _localize(naive: pl.Expr, timezone: str) -> pl.Expr:
    if timezone == "UTC":
        return naive.dt.replace_time_zone("UTC")
    return (naive.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
            .dt.convert_time_zone("UTC"))


def timestamp_exprs(raw: pl.Expr, date_format: str | None, timezone: str,
                    naive_formats: tuple[str, ...] | list[str] = NAIVE_FORMATS[:4],
                    normalized: bool = False) -> tuple[pl.Expr, pl.Expr]:
    """(timestamp in UTC, zone label) from timestamp text.

    Without ``date_format`` the text is normalised ("T" -> " ", "Z" -> "+00:00"); values carrying an
    offset are converted with it, naive values are read in ``timezone``. The zone label is the offset
    text, or null for naive values (used to count mixed time zones). ``normalized=True`` means
    ``raw`` is already stripped (with date_format) or normalised (without), e.g. a helper column
    computed once, as polars does not share the normalisation between the parse expressions.
    """
    if date_format:
        text = raw if normalized else raw.str.strip_chars()
        parsed = text.str.to_datetime(date_format, strict=False, time_unit="us", cache=False)
        if "%z" in date_format or "%#z" in date_format:
            return parsed.dt.convert_time_zone("UTC"), text.str.extract(_USER_OFFSET_RE, 1)
        return _localize(parsed, timezone), pl.lit(None, dtype=pl.String)
    text = raw if normalized else _normalize_ts_text(raw)
    tz = text.str.extract(_OFFSET_RE, 1)
    aware = _coalesce_parse(text, AWARE_FORMATS).dt.convert_time_zone("UTC")
    naive = _localize(_coalesce_parse(text, naive_formats), timezone)
    return pl.when(tz.is_not_null()).then(aware).otherwise(naive), tz


def _pick_formats(sample: pl.Series) -> list[str]:
    """Greedy choice of the naive formats that parse a sample of (normalised) timestamp text."""
    frame = pl.DataFrame({"t": sample}).select(_normalize_ts_text(pl.col("t")).alias("t"))
    frame = frame.filter(~pl.col("t").str.contains(_OFFSET_RE))
    if frame.height == 0:
        return list(NAIVE_FORMATS[:4])
    hits = frame.select([pl.col("t").str.to_datetime(f, strict=False, time_unit="us").is_not_null().alias(f)
                         for f in NAIVE_FORMATS])
    chosen: list[str] = []
    remaining = pl.Series([True] * frame.height)
    for _ in range(3):
        counts = {f: int((hits[f] & remaining).sum()) for f in NAIVE_FORMATS if f not in chosen}
        best = max(counts, key=lambda f: counts[f]) if counts else None
        if best is None or counts[best] == 0:
            break
        chosen.append(best)
        remaining = remaining & ~hits[best]
    return chosen


_DM_RE = r"^\s*(\d{1,2})/(\d{1,2})/"


def _max_parts(frame: pl.LazyFrame | pl.DataFrame, text: pl.Expr) -> tuple[int, int]:
    """Largest first and second number of "a/b/yyyy" dates (0 when none)."""
    out = frame.lazy().select(
        a=text.str.extract(_DM_RE, 1).cast(pl.Int32, strict=False).max(),
        b=text.str.extract(_DM_RE, 2).cast(pl.Int32, strict=False).max(),
    ).collect()
    return int(out["a"][0] or 0), int(out["b"][0] or 0)


def _settle_day_month(lf: pl.LazyFrame, text: pl.Expr, sample: pl.Series, formats: list[str],
                      label: str, name: str) -> list[str]:
    """Choose month-first or day-first for slash dates that the sample cannot tell apart.

    When every sampled "a/b/yyyy" value has a, b <= 12, the whole column is scanned once: a first
    number above 12 means day first, a second number above 12 means month first. If the column
    never tells, month first is kept and a warning says to set data.date_format.
    """
    if not any(f.startswith(("%m/%d", "%d/%m")) for f in formats):
        return formats
    a, b = _max_parts(pl.DataFrame({"t": sample}), pl.col("t"))
    if a > 12 or b > 12:
        return formats  # the sample already decided
    a, b = _max_parts(lf, text)
    if a > 12 and b <= 12:
        want, other = "%d/%m", "%m/%d"
    elif b > 12 and a <= 12:
        want, other = "%m/%d", "%d/%m"
    else:
        warnings.warn(f"{label}: dates in column '{name}' such as 01/02/2024 could be month-first or "
                      "day-first; reading them month-first. Set data.date_format (e.g. '%d/%m/%Y') to be sure.",
                      stacklevel=3)
        return formats
    return [f.replace(other, want, 1) if f.startswith(other) else f for f in formats]


# --------------------------------------------------------------------------- public API


def read_transactions(
    source: str | Path,
    columns: Mapping[str, str | None] | None = None,
    date_format: str | None = None,
    timezone: str = "UTC",
    preset: str | None = None,
    encoding: str = "utf8",
    sheet: str | int | None = None,
    decimal: str = ".",
    thousands: str | None = None,
    timestamp_unit: str | None = None,
) -> pl.LazyFrame:
    """Read a transaction log as a canonical LazyFrame (see the module docstring).

    ``columns`` maps canonical name -> source column (None = absent; ``columns=None`` = identity
    for canonical names present). With ``preset`` the layout is detected from the header and
    ``columns`` overrides single entries. ``encoding`` is "utf8" (default; the whole CSV is checked
    first, about 0.1 s per 100 MB, and a non-UTF-8 file raises DataError naming the line),
    "utf8-lossy" (bad bytes replaced) or any Python codec such as "cp1252" (decoded in memory).

    >>> lf = read_transactions("tx.csv", columns={"customer_id": "cid", "timestamp": "ts",  # doctest: +SKIP
    ...                        "amount": "total"})

    Also read: ``.xlsx`` / ``.xls`` workbooks (``sheet``: name or 1-based number, None = the first),
    ``.csv.gz`` / ``.csv.zst`` / a ``.zip`` holding one CSV (recognised by their first bytes),
    regional numbers (``decimal=","``, ``thousands="."`` reads "1.234,50 EUR") and numeric
    timestamps (``timestamp_unit``: "s" / "ms" since 1970 in UTC, "excel" serial day numbers in ``timezone``).
    """
    with _readable(str(source)):
        return _read_transactions(source, columns, date_format, timezone, preset, encoding,
                                  sheet, decimal, thousands, timestamp_unit)


def _read_transactions(
    source: str | Path,
    columns: Mapping[str, str | None] | None = None,
    date_format: str | None = None,
    timezone: str = "UTC",
    preset: str | None = None,
    encoding: str = "utf8",
    sheet: str | int | None = None,
    decimal: str = ".",
    thousands: str | None = None,
    timestamp_unit: str | None = None,
) -> pl.LazyFrame:
    check_number_format(decimal, thousands)
    if timestamp_unit not in TIMESTAMP_UNITS:
        raise ConfigError(f"data.timestamp_unit: '{timestamp_unit}' is not a unit. Fix: use null (dates as text), "
                          "'s' or 'ms' (since 1970-01-01 UTC) or 'excel' (Excel serial day numbers).")
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"data.timezone: unknown time zone '{timezone}'. Fix: use an IANA name such as "
                          "'UTC', 'Europe/London' or 'America/New_York'.") from None
    src, lf = _open_source(source, encoding, sheet)
    header = src.header
    cancellation_prefix = None
    mix_columns = {k: v for k, v in (columns or {}).items() if k in MIX_COLUMNS}  # purchase mix, read apart
    columns = None if columns is None else {k: v for k, v in columns.items() if k not in MIX_COLUMNS}
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"data.preset: unknown preset '{preset}'. Fix: use one of "
                              f"{', '.join(PRESETS)} or null.")
        spec = PRESETS[preset]
        layout = spec.detect(header)
        if layout is None:
            expected = "; ".join(f"{k}: {', '.join(v)}" for k, v in spec.signatures.items())
            raise _fail(src.label, f"the header does not match the '{preset}' preset (expected columns "
                        f"{expected}). The file's columns are: {columns_text(header)}.",
                        "remove data.preset and map data.columns yourself, or check the file.")
        merged = {k: (v if (v in header or k in REQUIRED) else None) for k, v in spec.layouts[layout].items()}
        merged.update(columns or {})
        columns = merged
        cancellation_prefix = spec.cancellation_prefix
    mapping = resolve_mapping(header, columns, src.label)
    schema = lf.collect_schema()
    used = {v for v in mapping.values() if v}
    # --- purchase mix (data.columns.category / discount / list_price; features/purchase_mix.py)
    mix = mix_mapping(header, mix_columns, src.label, mapping)
    used |= set(mix.values())

    exprs: list[pl.Expr] = []
    # ids
    for key in ("customer_id", "order_id"):
        if mapping[key]:
            name = mapping[key]
            exprs.append(_id_expr(name, schema[name], key, _float_like_ids(lf, name, schema[name])))
    if mapping["product_id"]:
        p = mapping["product_id"]
        if schema[p].is_integer():  # integer product ids stay integers
            exprs.append(pl.col(p).alias("product_id"))
        else:
            col = pl.col(p) if schema[p] == pl.String else pl.col(p).cast(pl.String)
            exprs.append(col.str.strip_chars().alias("product_id"))
    # numbers
    for key in ("quantity", "unit_price"):
        if mapping[key]:
            _check_numeric_dtype(src, key, mapping[key], schema[mapping[key]])
            symbols = _check_sample_numbers(src, lf, mapping[key], schema[mapping[key]], decimal, thousands)
            exprs.append(_number_expr(mapping[key], schema[mapping[key]], symbols, decimal, thousands).alias(key))
    if mapping["amount"]:
        name = mapping["amount"]
        _check_numeric_dtype(src, "amount", name, schema[name])
        amount = _number_expr(name, schema[name], _check_sample_numbers(src, lf, name, schema[name], decimal, thousands),
                              decimal, thousands)
        # raw text only from a text column (a typed null has no text to show; no per-row cast)
        raw_amount = pl.col(name) if schema[name] == pl.String else pl.lit(None, dtype=pl.String)
    else:
        q, u = mapping["quantity"], mapping["unit_price"]
        amount = (_number_expr(q, schema[q], _check_sample_numbers(src, lf, q, schema[q], decimal, thousands),
                               decimal, thousands)
                  * _number_expr(u, schema[u], _check_sample_numbers(src, lf, u, schema[u], decimal, thousands),
                                 decimal, thousands))
        raw_amount = pl.format("{} x {}", pl.col(q).cast(pl.String), pl.col(u).cast(pl.String))
    exprs.append(amount.alias("amount"))
    exprs.append(raw_amount.alias("_raw_amount"))
    # timestamp
    ts_name = mapping["timestamp"]
    if timestamp_unit:
        ts, tz, raw_ts, pre = _epoch_timestamp(src, lf, ts_name, schema[ts_name], timestamp_unit, timezone)
    else:
        ts, tz, raw_ts, pre = _timestamp_for(src, lf, ts_name, schema[ts_name], date_format, timezone)
    exprs += [ts.alias("timestamp"), raw_ts.alias("_raw_timestamp"), tz.alias("_tz")]
    exprs += mix_exprs(src, lf, mix, schema, decimal, thousands)  # purchase mix (after the canonical columns)
    if cancellation_prefix and mapping["order_id"]:
        exprs.append(pl.col(mapping["order_id"]).cast(pl.String).str.strip_chars()
                     .str.starts_with(cancellation_prefix).fill_null(False).alias("is_cancellation"))

    produced = {e.meta.output_name() for e in exprs}
    extras = [c for c in header if c not in used]
    renames = {c: (f"{c}_src" if c in produced else c) for c in extras}
    keep = [pl.col(c).alias(renames[c]) for c in extras]
    canon = [c for c in CANONICAL if c in produced]
    rest = [e for e in exprs if e.meta.output_name() not in CANONICAL]
    by_name = {e.meta.output_name(): e for e in exprs}
    # raw text is kept only where parsing failed (second step, so nothing is parsed twice)
    if pre is not None:
        lf = lf.with_columns(pre)
    return lf.select([by_name[c] for c in canon] + keep + rest).with_columns(
        pl.when(pl.col("amount").is_null()).then(pl.col("_raw_amount")).alias("_raw_amount"),
        pl.when(pl.col("timestamp").is_null()).then(pl.col("_raw_timestamp")).alias("_raw_timestamp"),
    )


def _check_numeric_dtype(src: _Source, canonical: str, name: str, dtype: pl.DataType) -> None:
    if dtype == pl.String or dtype.is_numeric() or dtype == pl.Null:
        return
    raise _fail(src.label, f"column '{name}' (mapped to '{canonical}') has type {dtype}, not numbers.",
                f"map data.columns.{canonical} to a numeric column.")


def _check_sample_numbers(src: _Source, lf: pl.LazyFrame, name: str, dtype: pl.DataType,
                          decimal: str = ".", thousands: str | None = None) -> bool:
    """Raise for a text column where none of the first rows is a number (wrong type), or where sampled
    values in a recognisable regional format (``1,234.50``, ``1.234,50 EUR``) would be lost or misread
    with the current ``data.decimal`` / ``data.thousands`` (the message names the setting that reads them).

    Returns whether the column needs currency symbols / spaces removed to parse.
    """
    if dtype != pl.String:
        return False
    sample = lf.select(pl.col(name)).head(_SAMPLE_ROWS).collect().to_series().drop_nulls()
    sample = sample.filter(~sample.str.strip_chars().is_in(NULL_TOKENS))
    if sample.len() == 0:
        return True
    parsed = pl.select(parse_number(pl.lit(sample), True, decimal, thousands)).to_series()
    plain = pl.select(parse_number(pl.lit(sample), False, decimal, thousands)).to_series()
    failed = sample.filter(parsed.is_null())
    found = regional_format(failed)
    if found is None and thousands:  # a separator in the wrong place is misread, not lost ("12,5" as 125)
        bare = pl.select(pl.lit(sample).str.replace_all(CURRENCY_RE, "")).to_series()
        sep, dec = re.escape(thousands), re.escape(decimal)
        grouped = rf"^[+-]?\d{{1,3}}(?:{sep}\d{{3}})*(?:{dec}\d*)?$|^[+-]?\d*(?:{dec}\d*)?(?:[eE][+-]?\d+)?$"
        odd = sample.filter(~bare.str.contains(grouped))
        found = regional_format(odd)
        failed = odd if found else failed
    if found is not None:
        setting, count, example = found
        now = f"data.decimal '{decimal}'" + (f", data.thousands '{thousands}'" if thousands else ", no data.thousands")
        raise _fail(src.label, f"{count:,} of the first {sample.len():,} values in column '{name}' are numbers "
                    f"written like {example!r}, which {now} would read wrongly or drop as not numbers.",
                    f"set {setting} (currency symbols and codes such as '$' or 'EUR' are removed by themselves).")
    if parsed.null_count() == sample.len():
        examples = ", ".join(repr(v) for v in sample.unique(maintain_order=True).head(3).to_list())
        raise _fail(src.label, f"column '{name}' holds text, not numbers (first values: {examples}).",
                    "map the amount (or quantity / unit_price) entries of data.columns to numeric columns; "
                    "for numbers such as '1.234,50' set data.decimal: ',' and data.thousands: '.'.")
    return plain.null_count() > parsed.null_count()


TIMESTAMP_UNITS = (None, "s", "ms", "excel")
_EXCEL_EPOCH_DAYS = 25569  # Excel's serial day number of 1970-01-01 (the 1900 system, after its leap-year bug)
_PER_UNIT_US = {"s": 1_000_000, "ms": 1_000}


def epoch_timestamp(num: pl.Expr, unit: str, timezone: str = "UTC") -> pl.Expr:
    """Numbers -> Datetime("us", "UTC"): ``unit`` "s" / "ms" since 1970-01-01 UTC, or "excel" serial day
    numbers (wall-clock time, read in ``timezone``). Non-finite or out-of-range numbers -> null.

    >>> pl.select(epoch_timestamp(pl.lit(45292.5), "excel")).item()
    datetime.datetime(2024, 1, 1, 12, 0, tzinfo=zoneinfo.ZoneInfo(key='UTC'))
    """
    if unit == "excel":  # Excel keeps times to the millisecond; a serial day's float error is below that
        us = ((num - _EXCEL_EPOCH_DAYS) * 86_400_000).round(0) * 1000
    else:
        us = (num * _PER_UNIT_US[unit]).round(0)
    ok = us.is_finite() & (us.abs() < 9e18)
    naive = pl.when(ok).then(us).cast(pl.Int64, strict=False).cast(pl.Datetime("us"))
    return _localize(naive, timezone) if unit == "excel" else naive.dt.replace_time_zone("UTC")


def _epoch_timestamp(src: _Source, lf: pl.LazyFrame, name: str, dtype: pl.DataType, unit: str,
                     timezone: str) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr | None]:
    """(timestamp, zone label, raw text, None) for a column of numbers read with ``data.timestamp_unit``;
    raises when the sampled numbers are no such timestamps (e.g. milliseconds read as seconds)."""
    col = pl.col(name)
    no_tz = pl.lit(None, dtype=pl.String)
    if not (dtype == pl.String or dtype.is_numeric()):
        raise _fail(src.label, f"column '{name}' (mapped to 'timestamp') has type {dtype}; data.timestamp_unit "
                    f"'{unit}' reads numbers.", "set data.timestamp_unit: null to read dates and text dates.")
    num = parse_number(col, symbols=False) if dtype == pl.String else col.cast(pl.Float64, strict=False)
    ts = epoch_timestamp(num, unit, timezone)
    years = lf.select(ts.dt.year().alias("y"), num.alias("n")).head(_SAMPLE_ROWS).collect()
    ok = years.filter(pl.col("y").is_between(*PLAUSIBLE_YEARS))
    if years["n"].drop_nulls().len() and ok.height * 2 <= years["n"].drop_nulls().len():
        example = years["n"].drop_nulls()[0]
        guess = next((u for u in ("s", "ms", "excel") if pl.select(epoch_timestamp(pl.lit(example), u).dt.year()
                      .is_between(1990, 2100)).item()), None)
        hint = f"set data.timestamp_unit: {guess}" if guess else "check data.timestamp_unit and the column mapping"
        raise _fail(src.label, f"the first values of column '{name}' (e.g. {example!r}) read with data.timestamp_unit "
                    f"'{unit}' fall outside the years {PLAUSIBLE_YEARS[0]}-{PLAUSIBLE_YEARS[1]}.", hint + ".")
    if years["n"].drop_nulls().len() == 0 and years.height:
        raise _fail(src.label, f"column '{name}' holds no numbers, so data.timestamp_unit '{unit}' cannot read it.",
                    "set data.timestamp_unit: null for dates written as text, or map the right column.")
    return ts, no_tz, col.cast(pl.String), None


def _timestamp_for(src: _Source, lf: pl.LazyFrame, name: str, dtype: pl.DataType,
                   date_format: str | None, timezone: str) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr | None]:
    """(timestamp, zone label, raw text, helper column to compute first or None) for the timestamp column."""
    col = pl.col(name)
    no_tz = pl.lit(None, dtype=pl.String)
    if isinstance(dtype, pl.Datetime):
        ts = col.cast(pl.Datetime("us", dtype.time_zone))
        ts = ts.dt.convert_time_zone("UTC") if dtype.time_zone else _localize(ts, timezone)
        return ts, no_tz, no_tz, None  # typed values: a null stays null, there is no raw text to show
    if dtype == pl.Date:
        return _localize(col.cast(pl.Datetime("us")), timezone), no_tz, no_tz, None
    if dtype == pl.String or (dtype.is_integer() and date_format):
        text = col if dtype == pl.String else col.cast(pl.String)
        sample = lf.select(text.alias("t")).head(_SAMPLE_ROWS).collect().to_series().drop_nulls()
        formats = list(NAIVE_FORMATS[:4])
        if sample.len():
            examples = ", ".join(repr(v) for v in sample.unique(maintain_order=True).head(3).to_list())
            if date_format:
                try:
                    ok = pl.select(timestamp_exprs(pl.lit(sample), date_format, "UTC")[0]).to_series()
                except pl.exceptions.PolarsError:
                    ok = pl.Series([None], dtype=TS_DTYPE)
                if ok.null_count() == ok.len():
                    raise _fail(src.label, f"data.date_format '{date_format}' matches none of the values in "
                                f"column '{name}' (first values: {examples}).",
                                "fix data.date_format (strftime codes, e.g. '%Y-%m-%d %H:%M:%S' or '%d/%m/%Y'), "
                                "or set it to null to detect ISO-8601 and common formats.")
            else:
                formats = _pick_formats(sample)
                aware = pl.select(_normalize_ts_text(pl.lit(sample)).str.contains(_OFFSET_RE)).to_series()
                if not formats and not aware.any():
                    raise _fail(src.label, f"column '{name}' (mapped to 'timestamp') holds values that are not "
                                f"recognised as dates (first values: {examples}).",
                                "set data.date_format to their format (e.g. '%d-%b-%Y'), or "
                                "data.timestamp_unit (s, ms or excel) for numbers, or map "
                                "data.columns.timestamp to the date column.")
                formats = _settle_day_month(lf, text, sample, formats or list(NAIVE_FORMATS[:4]), src.label, name)
        if sample.len():
            _check_years(src, name, sample, date_format, formats, timezone)
        pre = (text.str.strip_chars() if date_format else _normalize_ts_text(text)).alias("__ts_text")
        ts, tz = timestamp_exprs(pl.col("__ts_text"), date_format, timezone, formats, normalized=True)
        return ts, tz, text, pre
    raise _fail(src.label, f"column '{name}' (mapped to 'timestamp') has type {dtype}, not dates or text.",
                "map data.columns.timestamp to a date/time column (numbers like 20240131 also need "
                "data.date_format: '%Y%m%d'; epoch seconds or milliseconds and Excel serial day numbers need "
                "data.timestamp_unit: s, ms or excel).")


def _check_years(src: _Source, name: str, sample: pl.Series, date_format: str | None, formats: list[str],
                 timezone: str) -> None:
    """Raise when most sampled dates fall outside ``PLAUSIBLE_YEARS`` (``24-12-25`` read as year 0024):
    the format, not the rows, is wrong. A few such rows are left to quality.implausible_timestamp."""
    parsed = pl.select(timestamp_exprs(pl.lit(sample), date_format, timezone, formats)[0].dt.year().alias("y")).to_series()
    ok = parsed.drop_nulls()
    odd = ok.filter((ok < PLAUSIBLE_YEARS[0]) | (ok > PLAUSIBLE_YEARS[1]))
    if ok.len() == 0 or odd.len() * 2 <= ok.len():
        return
    idx = pl.select(pl.arg_where(parsed.is_not_null() & ((parsed < PLAUSIBLE_YEARS[0]) | (parsed > PLAUSIBLE_YEARS[1])))).to_series()
    example = sample[int(idx[0])]
    used = date_format or next((f for f in formats if "%Y" in f), "%Y-%m-%d")
    short = f" (%y reads '24' as 2024)" if int(odd[0]) < 100 else ""
    raise _fail(src.label, f"{odd.len():,} of the first {ok.len():,} dates in column '{name}' fall outside the years "
                f"{PLAUSIBLE_YEARS[0]}-{PLAUSIBLE_YEARS[1]} (e.g. {example!r} read as year {int(odd[0]):04d}).",
                f"set data.date_format to the values' format, e.g. '{used.replace('%Y', '%y')}' for two-digit "
                f"years{short}, or export the dates with four-digit years.")


#: an id as Excel writes a long number it shows in scientific notation ("1.23457E+11"): digits are lost
EXCEL_NOTATION = r"^[+-]?\d(?:[.,]\d+)?E\+\d{1,3}$"  # (always "E+": ids such as "3E10" or "2e5" are left alone)


def check_id_notation(df: pl.DataFrame, where: str, columns: tuple[str, ...] = ("customer_id", "order_id")) -> None:
    """Raise DataError when ids are written in scientific notation ("1.23457E+11"): Excel rounds long
    numeric ids that way, so distinct customers (or orders) would merge into one.

    >>> check_id_notation(pl.DataFrame({"customer_id": ["17850", "1.23457E+11"]}), "t.csv")
    Traceback (most recent call last):
    ...
    segmentation_lib.errors.DataError: t.csv: 1 value(s) of column customer_id are ids in scientific notation (e.g. '1.23457E+11'); Excel writes long numbers so and rounds them, which merges distinct ids into one. Fix: export the ids as text (in Excel format the column as Text before saving, or export from the source system directly) and read the file again.
    """
    for col in columns:
        if col not in df.columns or df.schema[col] != pl.String:
            continue
        ids = df[col]
        # a literal pre-filter keeps the regex off the (usual) ids without an exponent
        maybe = ids.filter(ids.str.contains("E+", literal=True))
        hits = maybe.filter(maybe.str.contains(EXCEL_NOTATION)) if maybe.len() else maybe
        if hits.len():
            ex = ", ".join(repr(v) for v in hits.unique(maintain_order=True).head(3).to_list())
            raise DataError(f"{where}: {hits.len():,} value(s) of column {col} are ids in scientific notation (e.g. {ex}); "
                            "Excel writes long numbers so and rounds them, which merges distinct ids into one. Fix: "
                            "export the ids as text (in Excel format the column as Text before saving, or export from "
                            "the source system directly) and read the file again.")


def read_customers(source: str | Path, columns: Mapping[str, str | None] | None = None,
                   encoding: str = "utf8", sheet: str | int | None = None) -> pl.DataFrame:
    """Read the optional customer attributes table (one row per customer).

    ``columns`` maps ``customer_id`` (and optionally any new name) to source columns; other columns
    are kept with their types (CSV types are inferred from the whole file). Duplicate ids raise.

    >>> read_customers("customers.csv", {"customer_id": "CustomerID"})  # doctest: +SKIP
    """
    with _readable(str(source)):
        return _read_customers(source, columns, encoding, sheet)


def _read_customers(source: str | Path, columns: Mapping[str, str | None] | None, encoding: str,
                    sheet: str | int | None = None) -> pl.DataFrame:
    src, lf = _open_source(source, encoding, sheet)
    mapping = dict(columns or {"customer_id": "customer_id"})
    cid = mapping.get("customer_id") or "customer_id"
    if cid not in src.header:
        raise _missing_column(src, "customer_id", cid, key="data.customers.columns")
    if src.kind == "csv" and encoding.lower().replace("-", "") in ("utf8", "utf8lossy"):
        df = pl.read_csv([str(p) for p in src.files] if len(src.files) > 1 else src.files[0],
                         separator=src.separator, infer_schema_length=None,
                         schema_overrides={cid: pl.String}, encoding=encoding)
        df = df.rename({c: c.strip().lstrip("\ufeff") for c in df.columns})
    else:
        df = lf.collect()
    renames = {v: k for k, v in mapping.items() if v and k != "customer_id" and v in df.columns}
    df = df.with_columns(_id_expr(cid, df.schema[cid], "customer_id"))
    if cid != "customer_id":
        df = df.drop(cid)
    df = df.rename(renames).select("customer_id", pl.exclude("customer_id"))
    check_id_notation(df, src.label, ("customer_id",))
    dup = df.filter(pl.col("customer_id").is_not_null() & pl.col("customer_id").is_duplicated())
    if dup.height:
        ex = ", ".join(dup["customer_id"].unique(maintain_order=True).head(5).to_list())
        raise _fail(src.label, f"the customer table has {dup['customer_id'].n_unique()} customer id(s) on more than "
                    f"one row (e.g. {ex}); it must hold one row per customer.",
                    "remove the duplicate rows (keep one per customer) and run again.")
    return df


def load_customers(config: Mapping) -> pl.DataFrame | None:
    """The customer attributes table named by ``data.customers`` of a run configuration, or None.

    None when ``data.customers.path`` is null; a configured path that does not exist raises DataError.

    >>> load_customers({"data": {"customers": {"path": None}}}) is None
    True
    """
    section = dict((config.get("data") or {}).get("customers") or {})
    if not section.get("path"):
        return None
    encoding = (config.get("data") or {}).get("encoding") or "utf8"
    path = Path(str(section["path"]))
    try:  # the file's identity: a changed file is read again
        st = path.stat()
        stamp = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        return read_customers(section["path"], section.get("columns"), encoding=encoding, sheet=section.get("sheet"))
    columns = tuple(sorted((section.get("columns") or {}).items()))
    return _customers_once(stamp, str(section["path"]), columns, encoding, section.get("sheet"))


@functools.lru_cache(maxsize=2)
def _customers_once(stamp: tuple, source: str, columns: tuple, encoding: str, sheet: str | int | None) -> pl.DataFrame:
    """:func:`read_customers`, once per file version in a process (a page's steps join the same table
    several times: the validation page's refits read a million-row table three times otherwise)."""
    return read_customers(source, dict(columns) or None, encoding=encoding, sheet=sheet)


def ids_like(c: pl.DataFrame, on: str, dtype: pl.DataType) -> pl.DataFrame:
    """The customer table with its ids in the transactions' id type (integer ids in a text customer
    file, or the other way round); ids that are not integers stay text (they match no integer id).

    >>> ids_like(pl.DataFrame({"customer_id": ["7", " 8"]}), "customer_id", pl.Int64)["customer_id"].to_list()
    [7, 8]
    """
    text = pl.col(on).cast(pl.String).str.strip_chars()
    if dtype.is_integer():
        as_int = c.select(text.cast(dtype, strict=False)).to_series()
        if as_int.null_count() == 0:
            return c.with_columns(as_int.alias(on))
    return c.with_columns(text.alias(on)) if dtype == pl.String else c


def attach_customers(features: pl.DataFrame | pl.LazyFrame, customers: pl.DataFrame | pl.LazyFrame,
                     on: str = "customer_id") -> tuple[pl.DataFrame, dict]:
    """Left-join customer attributes onto a per-customer table and count the mismatches.

    Returns ``(joined, report)``; report keys: ``customers`` (rows of features), ``attribute_rows``,
    ``matched``, ``only_in_transactions`` / ``only_in_attributes`` (counts) with ``*_examples``
    (up to 5 ids each), ``attribute_null_ids``.

    >>> f = pl.DataFrame({"customer_id": ["a", "b"]}); c = pl.DataFrame({"customer_id": ["b", "z"], "plan": [1, 2]})
    >>> attach_customers(f, c)[1]["only_in_attributes"]
    1
    """
    f = features.collect() if isinstance(features, pl.LazyFrame) else features
    c = customers.collect() if isinstance(customers, pl.LazyFrame) else customers
    null_ids = int(c[on].is_null().sum())
    c = c.filter(pl.col(on).is_not_null())
    if on in f.columns and on in c.columns and f.schema[on] != c.schema[on]:
        c = ids_like(c, on, f.schema[on])
    only_f = f.join(c.select(on), on=on, how="anti")
    only_c = c.join(f.select(on), on=on, how="anti")
    joined = f.join(c, on=on, how="left", suffix="_customer")
    report = {
        "customers": f.height,
        "attribute_rows": c.height + null_ids,
        "matched": f.height - only_f.height,
        "only_in_transactions": only_f.height,
        "only_in_transactions_examples": only_f[on].head(5).to_list(),
        "only_in_attributes": only_c.height,
        "only_in_attributes_examples": only_c[on].head(5).to_list(),
        "attribute_null_ids": null_ids,
    }
    return joined, report


# --------------------------------------------------------------------------- product-usage events

EVENT_COLUMNS = ("customer_id", "timestamp", "event", "value", "session_id")
EVENT_REQUIRED = ("customer_id", "timestamp", "event")


def read_events(source: str | Path, columns: Mapping[str, str | None] | None = None,
                date_format: str | None = None, timezone: str = "UTC", encoding: str = "utf8",
                sheet: str | int | None = None, timestamp_unit: str | None = None) -> pl.LazyFrame:
    """Read a product-usage event log as a LazyFrame of ``customer_id`` (String), ``timestamp``
    (Datetime UTC), ``event`` (String), optional ``value`` (Float64) and ``session_id`` (String),
    plus ``_raw_timestamp`` for the quality counts. Same formats and timestamp rules as
    :func:`read_transactions`; ``columns`` maps these names to the file's columns (None = absent).

    >>> lf = read_events("events.csv", {"customer_id": "account", "timestamp": "ts",  # doctest: +SKIP
    ...                  "event": "name", "session_id": "session"})
    """
    with _readable(str(source)):
        if timestamp_unit not in TIMESTAMP_UNITS:
            raise ConfigError(f"data.events.timestamp_unit: '{timestamp_unit}' is not a unit. Fix: use null, "
                              "'s', 'ms' or 'excel'.")
        src, lf = _open_source(source, encoding, sheet)
        mapping = {k: k if k in src.header else None for k in EVENT_COLUMNS}
        mapping.update(dict(columns or {}))
        for key in EVENT_COLUMNS:
            name = mapping.get(key)
            if name and name not in src.header or (key in EVENT_REQUIRED and not name):
                raise _missing_column(src, key, name or key, key="data.events.columns")
        schema = lf.collect_schema()
        cid, ts_name, ev = mapping["customer_id"], mapping["timestamp"], mapping["event"]
        if timestamp_unit:
            ts, _, raw_ts, pre = _epoch_timestamp(src, lf, ts_name, schema[ts_name], timestamp_unit, timezone)
        else:
            ts, _, raw_ts, pre = _timestamp_for(src, lf, ts_name, schema[ts_name], date_format, timezone)
        exprs = [_id_expr(cid, schema[cid], "customer_id", _float_like_ids(lf, cid, schema[cid])),
                 ts.alias("timestamp"), pl.col(ev).cast(pl.String).str.strip_chars().alias("event")]
        if mapping["value"]:
            v = mapping["value"]
            _check_numeric_dtype(src, "value", v, schema[v])
            exprs.append(_number_expr(v, schema[v], _check_sample_numbers(src, lf, v, schema[v])).alias("value"))
        if mapping["session_id"]:
            s = mapping["session_id"]
            exprs.append(_id_expr(s, schema[s], "session_id", False))
        exprs.append(raw_ts.alias("_raw_timestamp"))
        if pre is not None:
            lf = lf.with_columns(pre)
        return lf.select(exprs).with_columns(
            pl.when(pl.col("timestamp").is_null()).then(pl.col("_raw_timestamp")).alias("_raw_timestamp"))


# --------------------------------------------------------------------------- purchase mix (features/purchase_mix.py)
# Optional columns of the transaction log (data.columns.category / discount / list_price) and the optional
# product -> category table (data.products). Kept apart from the canonical reader above.

PRODUCT_COLUMNS = ("product_id", "category")


def mix_mapping(header: list[str], columns: Mapping[str, str | None] | None, label: str = "input",
                canonical: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The purchase-mix columns of ``data.columns`` that are mapped (null or left out = absent),
    checked against the header and against the source columns of the ``canonical`` mapping
    (a discount column that is also the amount would be read twice): ``{"category": "Dept", ...}``.

    >>> mix_mapping(["cid", "Dept"], {"category": "Dept", "discount": None})
    {'category': 'Dept'}
    """
    src = _Source(label=label, kind="", files=[], header=list(header))
    out: dict[str, str] = {}
    for key in MIX_COLUMNS:
        name = (columns or {}).get(key)
        if name is None:
            continue
        if isinstance(name, bool):  # YAML reads an unquoted Off / No / Yes / On as a boolean
            raise ConfigError(f"{label}: data.columns.{key} is the boolean {name} (YAML reads unquoted yes, no, on "
                              f"and off as booleans), not a column name. Fix: quote the column name, e.g. "
                              f"{key}: \"Off\".")
        if str(name) not in header:
            raise _missing_column(src, key, str(name))
        out[key] = str(name)
    taken = {v: k for k, v in (canonical or {}).items() if v}
    for key, name in out.items():
        other = taken.get(name) or next((k for k, v in out.items() if v == name and k != key), None)
        if other:
            keys = key if other in taken.values() else f"{other} / data.columns.{key}"
            raise ConfigError(f"{label}: data.columns maps the source column '{name}' to both {other} and {key}; "
                              f"each needs a column of its own. Fix: set data.columns.{keys} to its own column of "
                              "the file, or to null.")
    return out


def mix_exprs(src: _Source, lf: pl.LazyFrame, mix: Mapping[str, str], schema: Mapping[str, pl.DataType],
              decimal: str = ".", thousands: str | None = None) -> list[pl.Expr]:
    """Expressions of the mapped purchase-mix columns: ``category`` as stripped text (empty text is
    null), ``discount`` and ``list_price`` as Float64 parsed like the amounts (unparseable = null,
    counted by the purchase-mix report)."""
    exprs: list[pl.Expr] = []
    if "category" in mix:
        name = mix["category"]
        text = (pl.col(name) if schema[name] == pl.String else pl.col(name).cast(pl.String)).str.strip_chars()
        exprs.append(pl.when(text != "").then(text).alias("category"))
    for key in ("discount", "list_price"):
        if key in mix:
            name = mix[key]
            _check_numeric_dtype(src, key, name, schema[name])
            symbols = _check_sample_numbers(src, lf, name, schema[name], decimal, thousands)
            exprs.append(_number_expr(name, schema[name], symbols, decimal, thousands).alias(key))
    return exprs


def read_products(source: str | Path, columns: Mapping[str, str | None] | None = None,
                  encoding: str = "utf8", sheet: str | int | None = None) -> tuple[pl.DataFrame, dict]:
    """Read the product -> category table (``data.products``): one row per product, ``product_id``
    and ``category`` (text; empty = null). Returns ``(table, report)`` with the counts ``rows``,
    ``duplicate_rows`` (repeated identical (product, category) rows, kept once), ``null_product_ids``
    (rows without a product id, left out) and ``null_categories`` (products without a category).
    A product listed with two different categories raises DataError naming the file and examples.

    >>> read_products("products.csv", {"product_id": "sku", "category": "dept"})  # doctest: +SKIP
    """
    with _readable(str(source)):
        src, lf = _open_source(source, encoding, sheet)
        mapping = {k: k for k in PRODUCT_COLUMNS}
        mapping.update({k: v for k, v in dict(columns or {}).items() if v})
        unknown = sorted(set(dict(columns or {})) - set(PRODUCT_COLUMNS))
        if unknown:
            raise ConfigError(f"data.products.columns: unknown key(s) {', '.join(unknown)}. Fix: use only "
                              "product_id and category (kit name -> column in the product table).")
        for key in PRODUCT_COLUMNS:
            if mapping[key] not in src.header:
                raise _missing_column(src, key, mapping[key], key="data.products.columns")
        pid, cat = mapping["product_id"], mapping["category"]
        schema = lf.collect_schema()
        pid_expr = (pl.col(pid) if schema[pid].is_integer()
                    else pl.col(pid).cast(pl.String).str.strip_chars().replace("", None))
        text = pl.col(cat).cast(pl.String).str.strip_chars()
        df = lf.select(pid_expr.alias("product_id"), pl.when(text != "").then(text).alias("category")).collect()
    return unique_products(df, src.label, pid, cat)


def unique_products(df: pl.DataFrame, label: str = "product table", pid: str = "product_id",
                    cat: str = "category") -> tuple[pl.DataFrame, dict]:
    """One row per product of a ``product_id`` / ``category`` table, with the counts of
    :func:`read_products`; a product with two different categories raises DataError (``pid`` and
    ``cat`` name the source columns in the message).

    >>> unique_products(pl.DataFrame({"product_id": ["p", "p", None], "category": ["A", "A", "B"]}))[1]
    {'rows': 3, 'duplicate_rows': 1, 'null_product_ids': 1, 'null_categories': 0}
    """
    null_ids = int(df["product_id"].null_count())
    df = df.select("product_id", "category").filter(pl.col("product_id").is_not_null())
    unique = df.unique(maintain_order=True)
    clash = unique.filter(pl.col("product_id").is_duplicated())
    if clash.height:
        ex = clash.group_by("product_id", maintain_order=True).agg(pl.col("category")).head(3)
        listing = "; ".join(f"{p!r}: {', '.join(repr(c) for c in cs)}" for p, cs in ex.iter_rows())
        raise _fail(label, f"the product table has {clash['product_id'].n_unique():,} product id(s) "
                    f"(column '{pid}') listed with more than one category (column '{cat}'), e.g. {listing}; "
                    "a product needs one category for its spend to be counted once.",
                    "keep one row per product (one category each) in the product table, or map "
                    "data.columns.category to a category column of the transaction log instead.")
    report = {"rows": df.height + null_ids, "duplicate_rows": df.height - unique.height,
              "null_product_ids": null_ids, "null_categories": int(unique["category"].null_count())}
    return unique, report


def load_products(config: Mapping) -> tuple[pl.DataFrame, dict] | None:
    """The product table named by ``data.products`` of a run configuration with its report, or None
    when ``data.products.path`` is null.

    >>> load_products({"data": {"products": {"path": None}}}) is None
    True
    """
    section = dict((config.get("data") or {}).get("products") or {})
    if not section.get("path"):
        return None
    encoding = (config.get("data") or {}).get("encoding") or "utf8"
    return read_products(section["path"], section.get("columns"), encoding=encoding, sheet=section.get("sheet"))
