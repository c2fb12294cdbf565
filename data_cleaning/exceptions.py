"""Exceptions raised by the lead-list cleaning package.

Every error message says what is wrong and how to fix it, so the CLI and the API can show it
to the user as is.

The tree::

    DataCleaningError
    ├── InputFileError            the uploaded file cannot be read as a lead list
    │   ├── EmptyInputError       zero bytes, or nothing but blank lines
    │   ├── HeaderOnlyError       a header row but no data rows
    │   ├── BinaryFileError       not a text table (NUL bytes, an old .xls, an image, ...)
    │   ├── EncodingError         bytes that do not decode in the detected or given encoding
    │   ├── RaggedRowsError       data rows with a different number of cells than the header
    │   ├── InputTooLargeError    bigger than the configured size limit
    │   ├── FormulaCellsError     an XLSX sheet containing formulas
    │   └── SheetNotFoundError    the requested XLSX sheet does not exist
    ├── PhoneColumnError          no phone column could be found, or the named one is missing
    ├── CleaningOptionsError      an option has an unusable value (unknown region, type, ...)
    └── SuppressionError          a do-not-call list or key cannot be used
"""

from __future__ import annotations

__all__ = [
    "BinaryFileError",
    "CleaningOptionsError",
    "DataCleaningError",
    "EmptyInputError",
    "EncodingError",
    "FormulaCellsError",
    "HeaderOnlyError",
    "InputFileError",
    "InputTooLargeError",
    "PhoneColumnError",
    "RaggedRowsError",
    "SheetNotFoundError",
    "SuppressionError",
]


class DataCleaningError(Exception):
    """Base class of every error raised by ``data_cleaning``."""


class InputFileError(DataCleaningError):
    """The input file cannot be read as a lead list."""


class EmptyInputError(InputFileError):
    """The file is empty."""


class HeaderOnlyError(InputFileError):
    """The file has a header row but no data rows."""


class BinaryFileError(InputFileError):
    """The file is not a text table or an XLSX workbook."""


class EncodingError(InputFileError):
    """The file's bytes do not decode in the detected or requested encoding."""


class RaggedRowsError(InputFileError):
    """Some data rows have more or fewer cells than the header."""

    def __init__(self, message: str, rows: list[tuple[int, int]]) -> None:
        super().__init__(message)
        #: ``(row_number, cell_count)`` of the first offending rows.
        self.rows = rows


class InputTooLargeError(InputFileError):
    """The file is larger than the configured limit."""

    def __init__(self, message: str, limit_bytes: int, size_bytes: int) -> None:
        super().__init__(message)
        self.limit_bytes = limit_bytes
        self.size_bytes = size_bytes


class FormulaCellsError(InputFileError):
    """An XLSX sheet contains formulas, whose values cannot be trusted."""

    def __init__(self, message: str, cells: list[str]) -> None:
        super().__init__(message)
        #: Coordinates such as ``"B3"`` of the first formula cells found.
        self.cells = cells


class SheetNotFoundError(InputFileError):
    """The requested sheet does not exist in the workbook."""


class PhoneColumnError(DataCleaningError):
    """No phone column was found, or the named column does not exist."""


class CleaningOptionsError(DataCleaningError):
    """An option has a value the cleaner cannot use."""


class SuppressionError(DataCleaningError):
    """A do-not-call list, hash or key cannot be used."""
