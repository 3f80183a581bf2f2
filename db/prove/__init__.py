"""`tasks-api prove`: the live access matrix, proved with SQL alone and rolled back.

matrix (what policies/ declares each identity may do), rows (synthetic rows from the catalog),
probes (each command tried as tasks_app), runner (the one transaction), report (how it reads).
"""

from db.prove.matrix import Access, Cell, Proof
from db.prove.runner import ProofUnavailable, prove_database, run_proof

__all__ = ["Access", "Cell", "Proof", "ProofUnavailable", "prove_database", "run_proof"]
