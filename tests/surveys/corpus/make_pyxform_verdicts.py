"""Recompute pyxform_verdicts.json: what pyxform (the reference XLSForm converter) says of
every form here. Run from this folder: ``python make_pyxform_verdicts.py > pyxform_verdicts.json``
(pyxform is a test dependency; ``validate=False`` skips ODK Validate, which needs Java)."""

import json
import warnings
from pathlib import Path

from pyxform.xls2xform import convert

out = {}
for f in sorted(Path(".").glob("*.xls*")):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            convert(xlsform=str(f), validate=False, pretty_print=False)
        out[f.name] = "accepted"
    except Exception as e:
        out[f.name] = "rejected: " + (str(e).splitlines() or [type(e).__name__])[0][:160]
print(json.dumps(out, indent=1, ensure_ascii=False))
