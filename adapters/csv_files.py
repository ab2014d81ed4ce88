"""CSV files: vendors and certificates in, compliance out.

Objects: `Vendor` and `Certificate` (read from `path`), `Compliance` (written to, and read back
from, `export_path`).

Settings (see docs/adapters/csv.md):

- `path`: the inbound CSV file, or a directory. In a directory an object reads every `*.csv`
  file whose name starts with the object's name, any case, in name order (`vendors.csv`,
  `Vendor-2026-05.csv`; `certificates.csv`). A single file serves every object.
- `export_path`: the compliance export file, or a directory (then `compliance.csv` in it).
- `delimiter` (default `,`), `encoding` (default `utf-8-sig`: a byte-order mark is skipped when
  reading and written when exporting, which is what Excel expects).
- `id_column` (default `id`): the column holding the record's id; `id_columns` may name one per
  object, e.g. `{"Vendor": "external_id", "Certificate": "vendor_external_id"}`.
- `page_size` (default 500 rows).
- `escape_formulas` (default true): exported text starting with `=`, `+`, `-`, `@`, tab or
  carriage return gets a leading `'` so a spreadsheet shows it instead of running it.

Reading is always a full read (`since` is ignored; watermarks are None). Each data row becomes
a RemoteRecord whose `data` is the row as text, keyed by the header's (trimmed) column names;
cells beyond the header go under `_extra`, missing trailing cells are None. A row with an empty
id is still yielded, with `external_id` "", so the sync can reject it with a reason; rows whose
cells are all empty (trailing `,,,` lines) are skipped.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from adapters.base import (
    Adapter,
    AdapterError,
    ConfigurationError,
    Page,
    RemoteRecord,
    WriteRequest,
    WriteResult,
)

try:  # POSIX: serialise concurrent exports of the same file
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

EXPORT_ID = "external_id"
EXPORT_FILE = "compliance.csv"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class CsvAdapter(Adapter):
    kind = "csv"
    objects = ("Vendor", "Certificate", "Compliance")

    def __init__(self, settings: Mapping[str, Any]):
        super().__init__(settings)
        self.path = Path(settings["path"]).expanduser() if settings.get("path") else None
        export = settings.get("export_path")
        self.export_path = Path(export).expanduser() if export else None
        self.delimiter = str(settings.get("delimiter") or ",")
        if len(self.delimiter) != 1 or self.delimiter in '"\r\n':
            raise ConfigurationError("delimiter must be one character (not a quote or newline)")
        self.encoding = str(settings.get("encoding") or "utf-8-sig")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ConfigurationError(f"unknown encoding {self.encoding!r}") from None
        self.id_column = str(settings.get("id_column") or "id")
        self.id_columns = dict(settings.get("id_columns") or {})
        try:
            self.page_size = int(settings.get("page_size") or 500)
        except (TypeError, ValueError):
            raise ConfigurationError("page_size must be a whole number") from None
        if self.page_size < 1:
            raise ConfigurationError("page_size must be at least 1")
        self.escape_formulas = bool(settings.get("escape_formulas", True))

    # --- Adapter interface -------------------------------------------------------------------

    def test(self) -> dict[str, Any]:
        if self.path is None and self.export_path is None:
            raise ConfigurationError("path or export_path is required")
        facts: dict[str, Any] = {}
        if self.path is not None:
            if not self.path.exists():
                raise ConfigurationError(f"path {self.path} does not exist")
            files = [self.path] if self.path.is_file() else sorted(self.path.glob("*.csv"))
            facts["files"] = {f.name: self._header(f) for f in files}
        if self.export_path is not None:
            target = self._export_file()
            if not target.parent.is_dir() or not os.access(target.parent, os.W_OK):
                raise ConfigurationError(f"cannot write to the directory of {target}")
            facts["export_file"] = str(target)
        return facts

    def read_changes(self, object: str, since: str | None) -> Iterator[Page]:
        """Every row of the object's files, `page_size` rows a page; `since` is ignored. The
        bookmark is `file name:line` after the page's last row."""
        files = self._files(object)
        id_column = self._id_column(object)
        return self._pages(files, id_column)

    def read_one(self, object: str, external_id: str) -> RemoteRecord | None:
        """The last row with this id (a later row overrides an earlier one, as in a full read)."""
        found = None
        for page in self.read_changes(object, None):
            for record in page.records:
                if record.external_id == external_id:
                    found = record
        return found

    def write(self, object: str, requests: Sequence[WriteRequest]) -> list[WriteResult]:
        """Merge into the export: a row per external_id (existing rows keep their place, new ones
        are appended, new fields become new columns). The whole batch is written at once to a
        temporary file that then replaces the export, so a reader never sees half a file and a
        failure leaves the old file as it was (and raises AdapterError)."""
        if object != "Compliance":
            raise ConfigurationError(f"csv writes only Compliance, not {object!r}")
        target = self._export_file()
        results = []
        updates: dict[str, dict[str, str]] = {}
        for req in requests:
            if not req.external_id:
                results.append(WriteResult("", False, "no external id to write to"))
                continue
            row = updates.setdefault(req.external_id, {})
            row.update({k: self._cell(v) for k, v in req.fields.items() if k != EXPORT_ID})
            results.append(WriteResult(req.external_id, True))
        if not updates:
            return results
        try:
            with _locked(target):
                self._merge(target, updates)
        except OSError as err:
            raise AdapterError(f"cannot write {target.name}: {err.strerror}") from None
        return results

    # --- reading -----------------------------------------------------------------------------

    def _files(self, object: str) -> list[Path]:
        if object not in self.objects:
            raise ConfigurationError(f"csv has no object {object!r}; known: {self.objects}")
        if object == "Compliance":
            target = self._export_file()
            return [target] if target.exists() else []
        if self.path is None:
            raise ConfigurationError("path is required to read")
        if self.path.is_file():
            return [self.path]
        if not self.path.is_dir():
            raise ConfigurationError(f"path {self.path} does not exist")
        prefix = object.lower()
        return sorted(
            f
            for f in self.path.iterdir()
            if f.is_file() and f.suffix.lower() == ".csv" and f.name.lower().startswith(prefix)
        )

    def _id_column(self, object: str) -> str:
        if object == "Compliance":
            return EXPORT_ID
        return str(self.id_columns.get(object) or self.id_column)

    def _pages(self, files: list[Path], id_column: str) -> Iterator[Page]:
        for file in files:
            with self._open(file) as reader:
                if reader.fieldnames is not None and id_column not in reader.fieldnames:
                    raise ConfigurationError(
                        f"{file.name} has no {id_column!r} column (set id_column);"
                        f" its columns: {', '.join(reader.fieldnames)}"
                    )
                records: list[RemoteRecord] = []
                for row in _rows(reader, file):
                    external_id = (row.get(id_column) or "").strip()
                    records.append(RemoteRecord(external_id=external_id, data=row))
                    if len(records) >= self.page_size:
                        yield Page(records, bookmark=f"{file.name}:{reader.line_num}")
                        records = []
                if records:
                    yield Page(records, bookmark=f"{file.name}:{reader.line_num}")

    @contextlib.contextmanager
    def _open(self, file: Path) -> Iterator[csv.DictReader]:
        try:
            handle = file.open(encoding=self.encoding, newline="")
        except OSError as err:
            raise AdapterError(f"cannot open {file.name}: {err.strerror}") from None
        with handle:
            reader = csv.DictReader(handle, delimiter=self.delimiter, restkey="_extra")
            try:
                header = reader.fieldnames
            except (UnicodeDecodeError, csv.Error) as err:
                raise _read_error(file, 1, err) from None
            if header is not None:
                names = [(name or "").strip() for name in header]
                duplicates = sorted({n for n in names if names.count(n) > 1})
                if duplicates:
                    raise AdapterError(
                        f"{file.name}: column(s) {', '.join(map(repr, duplicates))} appear twice",
                        retryable=False,
                    )
                reader.fieldnames = names
            yield reader

    def _header(self, file: Path) -> list[str]:
        with self._open(file) as reader:
            return list(reader.fieldnames or [])

    # --- writing -----------------------------------------------------------------------------

    def _export_file(self) -> Path:
        if self.export_path is None:
            raise ConfigurationError("export_path is required to write or read Compliance")
        return self.export_path / EXPORT_FILE if self.export_path.is_dir() else self.export_path

    def _cell(self, value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, date | datetime):
            return value.isoformat()
        if isinstance(value, dict | list | tuple):
            return json.dumps(value, ensure_ascii=False, default=str)
        if isinstance(value, str):
            if self.escape_formulas and value.startswith(_FORMULA_START):
                return "'" + value
            return value
        return str(value)

    def _merge(self, target: Path, updates: dict[str, dict[str, str]]) -> None:
        columns = [EXPORT_ID]
        rows: dict[str, dict[str, str]] = {}
        if target.exists():
            with self._open(target) as reader:
                header = list(reader.fieldnames or [])
                if header and EXPORT_ID not in header:
                    raise AdapterError(
                        f"{target.name} has no {EXPORT_ID} column; not overwriting it",
                        retryable=False,
                    )
                columns += [c for c in header if c != EXPORT_ID]
                for row in _rows(reader, target):
                    row.pop("_extra", None)
                    key = (row.get(EXPORT_ID) or "").strip()
                    if key:
                        rows[key] = {k: v or "" for k, v in row.items()}
        for external_id, fields in updates.items():
            rows.setdefault(external_id, {EXPORT_ID: external_id}).update(fields)
            columns += [name for name in fields if name not in columns]
        _replace_atomically(target, self.encoding, columns, rows.values(), self.delimiter)


def _rows(reader: csv.DictReader, file: Path) -> Iterator[dict[str, Any]]:
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except (UnicodeDecodeError, csv.Error) as err:
            raise _read_error(file, reader.line_num + 1, err) from None
        cells = [v for k, v in row.items() if k != "_extra"] + (row.get("_extra") or [])
        if any(cell not in (None, "") for cell in cells):
            yield row


def _read_error(file: Path, line: int, err: Exception) -> AdapterError:
    detail = f"not {err.encoding} text" if isinstance(err, UnicodeDecodeError) else str(err)
    return AdapterError(f"{file.name} near line {line}: {detail}", retryable=False)


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    """An advisory lock beside the export, so two writers merge one after the other."""
    if fcntl is None:
        yield
        return
    lock_path = target.with_name(f".{target.name}.lock")
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _replace_atomically(target, encoding, columns, rows, delimiter) -> None:
    """Write to a temporary file in the same directory, flush it to disk, then rename it over
    the target (atomic on POSIX and Windows); the old file's permissions are kept (a new file
    gets 0644)."""
    try:
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    temporary: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            "w",
            encoding=encoding,
            newline="",
            dir=target.parent,
            prefix=f".{target.name}.",
            suffix=".tmp",
            delete=False,
        ) as handle:
            temporary = handle.name
            writer = csv.DictWriter(
                handle, fieldnames=columns, delimiter=delimiter, restval="", extrasaction="ignore"
            )
            writer.writeheader()
            writer.writerows(rows)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        with contextlib.suppress(OSError):
            fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
