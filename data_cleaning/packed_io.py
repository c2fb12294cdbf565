"""Normalised chunks on disk: :class:`~data_cleaning.vectorised.PackedResult` as Arrow IPC.

A list cleaned in parts by several workers (on several machines) hands each part's normalised
chunks to the final step as a file: one Arrow IPC stream, one record batch per chunk, its
small tables (regions, time zones, carriers) and split cells in the batch's metadata as JSON.
Reading gives back results equal to those written, field by field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa

from data_cleaning.cells import SplitCells
from data_cleaning.vectorised import PackedResult

__all__ = ["read_packed", "write_packed"]

_META: Final = b"pilotdial"
_COLUMNS: Final = (
    ("reasons", pa.int8()),
    ("types", pa.int8()),
    ("e164", pa.string()),
    ("e164_int", pa.int64()),
    ("extensions", pa.string()),
    ("region_ids", pa.int32()),
    ("zone_ids", pa.int32()),
    ("carrier_ids", pa.int32()),
    ("virtual", pa.bool_()),
)


def _schema(suppression_sets: int) -> pa.Schema:
    fields = [pa.field(name, kind) for name, kind in _COLUMNS]
    fields += [pa.field(f"suppressed_{k}", pa.bool_()) for k in range(suppression_sets)]
    return pa.schema(fields)


def write_packed(path: Path, chunks: Iterable[PackedResult], suppression_sets: int) -> int:
    """Write normalised chunks to ``path``; returns the number of rows written."""
    schema = _schema(suppression_sets)
    rows = 0
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for packed in chunks:
            if len(packed.suppressed) != suppression_sets:
                raise ValueError("every chunk needs the same do-not-call sets")
            arrays: list[Any] = [
                pa.array(packed.reasons, pa.int8()),
                pa.array(packed.types, pa.int8()),
                packed.e164,
                pa.array(packed.e164_int, pa.int64()),
                packed.extensions,
                pa.array(packed.region_ids, pa.int32()),
                pa.array(packed.zone_ids, pa.int32()),
                pa.array(packed.carrier_ids, pa.int32()),
                pa.array(packed.virtual, pa.bool_()),
                *(pa.array(flags, pa.bool_()) for flags in packed.suppressed),
            ]
            split = packed.split
            meta = {
                "region_table": packed.region_table,
                "zone_table": [list(zones) for zones in packed.zone_table],
                "carrier_table": packed.carrier_table,
                "split": None
                if split is None
                else {
                    "rows": split.rows.tolist(),
                    "alternates": [list(a) for a in split.alternates],
                    "dropped": [list(d) for d in split.dropped],
                },
            }
            batch = pa.record_batch(arrays, schema=schema)
            writer.write_batch(batch, custom_metadata={_META: json.dumps(meta).encode()})
            rows += batch.num_rows
    return rows


def read_packed(path: Path) -> Iterator[PackedResult]:
    """The normalised chunks written by :func:`write_packed`, in order."""
    with pa.OSFile(str(path), "rb") as source, pa.ipc.open_stream(source) as reader:
        sets = len(reader.schema) - len(_COLUMNS)
        for batch, custom in reader.iter_batches_with_custom_metadata():
            meta = json.loads(custom[_META])
            columns = batch.columns
            split = meta["split"]
            yield PackedResult(
                reasons=np.asarray(columns[0].to_numpy(), dtype=np.int8),
                types=np.asarray(columns[1].to_numpy(), dtype=np.int8),
                e164=columns[2],
                e164_int=np.asarray(columns[3].to_numpy(), dtype=np.int64),
                extensions=columns[4],
                region_ids=np.asarray(columns[5].to_numpy(), dtype=np.int32),
                region_table=meta["region_table"],
                zone_ids=np.asarray(columns[6].to_numpy(), dtype=np.int32),
                zone_table=[tuple(zones) for zones in meta["zone_table"]],
                carrier_ids=np.asarray(columns[7].to_numpy(), dtype=np.int32),
                carrier_table=meta["carrier_table"],
                virtual=np.asarray(columns[8].to_numpy(zero_copy_only=False), dtype=np.bool_),
                suppressed=[
                    np.asarray(columns[len(_COLUMNS) + k].to_numpy(zero_copy_only=False))
                    for k in range(sets)
                ],
                split=None
                if split is None
                else SplitCells(
                    np.array(split["rows"], dtype=np.intp),
                    [tuple(a) for a in split["alternates"]],
                    [tuple(d) for d in split["dropped"]],
                ),
            )
