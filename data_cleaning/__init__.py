"""Lead-list cleaning: read CSV/TSV/XLSX lists, normalise phone numbers, dedupe, suppress, enrich.

The pure domain layer (no database, no server). Entry points:

* :func:`clean_table` streams a file through the pipeline and returns a :class:`CleaningRun`
  whose chunks and final :class:`CleaningReport` the CLI and the database import job consume;
* :class:`PhoneNormaliser` and :class:`Enricher` work on single numbers;
* :class:`SuppressionSet` holds do-not-call numbers as keyed HMAC-SHA256 hashes;
* :mod:`data_cleaning.writers` writes CLEANED.csv / REJECTS.csv / REPORT.json and neutralises
  CSV cells for downloads.

Errors are the :class:`DataCleaningError` tree in :mod:`data_cleaning.exceptions`.
"""

from data_cleaning.columns import detect_phone_column, looks_like_phone
from data_cleaning.enrich import Enricher, Enrichment, load_virtual_operator_table
from data_cleaning.exceptions import (
    BinaryFileError,
    CleaningOptionsError,
    DataCleaningError,
    EmptyInputError,
    EncodingError,
    FormulaCellsError,
    HeaderOnlyError,
    InputFileError,
    InputTooLargeError,
    PhoneColumnError,
    RaggedRowsError,
    SheetNotFoundError,
    SuppressionError,
)
from data_cleaning.models import (
    ENRICHMENT_COLUMNS,
    ChunkResult,
    CleaningOptions,
    CleaningProgress,
    CleaningReport,
    NumberType,
    RejectReason,
    RowResult,
    RowStatus,
)
from data_cleaning.normalise import NormalisedNumber, PhoneNormaliser, split_extension
from data_cleaning.pipeline import CleaningRun, clean_table
from data_cleaning.readers import open_table
from data_cleaning.suppression import (
    SuppressionEntry,
    SuppressionSet,
    hash_e164,
    load_dnc_file,
    mask_e164,
    suppression_entry,
)
from data_cleaning.writers import (
    CleanedWriter,
    RejectsWriter,
    neutralise_cell,
    neutralise_row,
    write_report,
)

__all__ = [
    "ENRICHMENT_COLUMNS",
    "BinaryFileError",
    "ChunkResult",
    "CleanedWriter",
    "CleaningOptions",
    "CleaningOptionsError",
    "CleaningProgress",
    "CleaningReport",
    "CleaningRun",
    "DataCleaningError",
    "EmptyInputError",
    "EncodingError",
    "Enricher",
    "Enrichment",
    "FormulaCellsError",
    "HeaderOnlyError",
    "InputFileError",
    "InputTooLargeError",
    "NormalisedNumber",
    "NumberType",
    "PhoneColumnError",
    "PhoneNormaliser",
    "RaggedRowsError",
    "RejectReason",
    "RejectsWriter",
    "RowResult",
    "RowStatus",
    "SheetNotFoundError",
    "SuppressionEntry",
    "SuppressionError",
    "SuppressionSet",
    "clean_table",
    "detect_phone_column",
    "hash_e164",
    "load_dnc_file",
    "load_virtual_operator_table",
    "looks_like_phone",
    "mask_e164",
    "neutralise_cell",
    "neutralise_row",
    "open_table",
    "split_extension",
    "suppression_entry",
    "write_report",
]
