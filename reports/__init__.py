"""Contract reports, monthly statements (對帳單) and platform availability.

Reads the attempts, agent state log and lead tables of the other domains (never writes them)
and keeps its own: report profiles and generated files, contracts, seat leases, supervisor
adjustments, versioned statements and outages. Pure maths lives in ``periods``, ``figures``,
``billing`` and ``build``; ``render`` writes XLSX, HTML and CSV.
"""

__all__: list[str] = []
