"""The audit rules, in report order: one module per rule, each opening with its SQL.

Add a rule by writing a module with a `RULE` and listing it here; tests/audit/ then needs one
test that makes it fire on a broken database and its quiet check on the migrated one.
"""

from __future__ import annotations

from db.audit.rule import Rule
from db.audit.rules import (
    r01_rls_not_enabled,
    r02_rls_not_forced,
    r03_rls_enabled_no_policy,
    r04_policy_for_public,
    r05_policy_always_true,
    r06_multiple_permissive_policies,
    r07_policy_per_row_call,
    r08_policy_column_unindexed,
    r09_runtime_role_superuser,
    r10_runtime_role_bypassrls,
    r11_runtime_role_owns_objects,
    r12_runtime_role_member_of_privileged,
    r13_excess_table_privilege,
    r14_update_of_immutable_column,
    r15_security_definer_executable,
    r16_view_without_security_invoker,
    r17_drift,
    r18_policy_not_bound_to_identity,
    r19_null_identity_disjunct,
    r20_identity_wildcard_match,
    r21_granted_command_without_policy,
    r22_policy_command_not_granted,
    r23_insert_of_server_generated_column,
    r24_tenant_table_granted_to_public,
    r25_runtime_role_can_log_in,
    r26_runtime_role_can_escalate,
    r27_runtime_role_inherits_undeclared_role,
    r28_declared_tenant_table_missing,
    r29_policy_exists_rls_disabled,
    r30_no_primary_key,
    r31_duplicate_index,
    r32_function_search_path_mutable,
)

RULES: tuple[Rule, ...] = (
    r01_rls_not_enabled.RULE,
    r02_rls_not_forced.RULE,
    r03_rls_enabled_no_policy.RULE,
    r04_policy_for_public.RULE,
    r05_policy_always_true.RULE,
    r06_multiple_permissive_policies.RULE,
    r07_policy_per_row_call.RULE,
    r08_policy_column_unindexed.RULE,
    r09_runtime_role_superuser.RULE,
    r10_runtime_role_bypassrls.RULE,
    r11_runtime_role_owns_objects.RULE,
    r12_runtime_role_member_of_privileged.RULE,
    r13_excess_table_privilege.RULE,
    r14_update_of_immutable_column.RULE,
    r15_security_definer_executable.RULE,
    r16_view_without_security_invoker.RULE,
    r18_policy_not_bound_to_identity.RULE,
    r19_null_identity_disjunct.RULE,
    r20_identity_wildcard_match.RULE,
    r21_granted_command_without_policy.RULE,
    r22_policy_command_not_granted.RULE,
    r23_insert_of_server_generated_column.RULE,
    r24_tenant_table_granted_to_public.RULE,
    r25_runtime_role_can_log_in.RULE,
    r26_runtime_role_can_escalate.RULE,
    r27_runtime_role_inherits_undeclared_role.RULE,
    r28_declared_tenant_table_missing.RULE,
    r29_policy_exists_rls_disabled.RULE,
    r30_no_primary_key.RULE,
    r31_duplicate_index.RULE,
    r32_function_search_path_mutable.RULE,
    r17_drift.RULE,
)

BY_ID = {rule.id: rule for rule in RULES}
