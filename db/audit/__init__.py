"""The DBA audit: rules that read the live catalog and say what would let isolation fail.

`tasks-api audit` prints the report; `tasks-api serve` refuses to start on its errors. Rules live
one per module in db/audit/rules/ (splinter's shape); db.catalog supplies the drift engine.
"""

from db.audit.rule import Finding, Severity
from db.audit.runner import Report, RuleError, audit_database, run_audit

__all__ = ["Finding", "Report", "RuleError", "Severity", "audit_database", "run_audit"]
