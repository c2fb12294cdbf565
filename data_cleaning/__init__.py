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

import importlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
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

# Names are imported on first use (PEP 562): ``pilotdial clean --help`` and the API's import of
# one module must not load the phone metadata and pyarrow.
_EXPORTS: Final = {
    "detect_phone_column": "data_cleaning.columns",
    "looks_like_phone": "data_cleaning.columns",
    "Enricher": "data_cleaning.enrich",
    "Enrichment": "data_cleaning.enrich",
    "load_virtual_operator_table": "data_cleaning.enrich",
    "BinaryFileError": "data_cleaning.exceptions",
    "CleaningOptionsError": "data_cleaning.exceptions",
    "DataCleaningError": "data_cleaning.exceptions",
    "EmptyInputError": "data_cleaning.exceptions",
    "EncodingError": "data_cleaning.exceptions",
    "FormulaCellsError": "data_cleaning.exceptions",
    "HeaderOnlyError": "data_cleaning.exceptions",
    "InputFileError": "data_cleaning.exceptions",
    "InputTooLargeError": "data_cleaning.exceptions",
    "PhoneColumnError": "data_cleaning.exceptions",
    "RaggedRowsError": "data_cleaning.exceptions",
    "SheetNotFoundError": "data_cleaning.exceptions",
    "SuppressionError": "data_cleaning.exceptions",
    "ChunkResult": "data_cleaning.models",
    "CleaningOptions": "data_cleaning.models",
    "CleaningProgress": "data_cleaning.models",
    "CleaningReport": "data_cleaning.models",
    "ENRICHMENT_COLUMNS": "data_cleaning.models",
    "NumberType": "data_cleaning.models",
    "RejectReason": "data_cleaning.models",
    "RowResult": "data_cleaning.models",
    "RowStatus": "data_cleaning.models",
    "NormalisedNumber": "data_cleaning.normalise",
    "PhoneNormaliser": "data_cleaning.normalise",
    "split_extension": "data_cleaning.normalise",
    "CleaningRun": "data_cleaning.pipeline",
    "clean_table": "data_cleaning.pipeline",
    "open_table": "data_cleaning.readers",
    "SuppressionEntry": "data_cleaning.suppression",
    "SuppressionSet": "data_cleaning.suppression",
    "hash_e164": "data_cleaning.suppression",
    "load_dnc_file": "data_cleaning.suppression",
    "mask_e164": "data_cleaning.suppression",
    "suppression_entry": "data_cleaning.suppression",
    "CleanedWriter": "data_cleaning.writers",
    "RejectsWriter": "data_cleaning.writers",
    "neutralise_cell": "data_cleaning.writers",
    "neutralise_row": "data_cleaning.writers",
    "write_report": "data_cleaning.writers",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'data_cleaning' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
