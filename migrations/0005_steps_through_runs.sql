-- /metrics reaches steps through their runs (runs_tenant_created_idx, then run_steps by its primary key),
-- so run_steps keeps no secondary index: archiving a step writes one D1 row instead of two.
DROP INDEX `run_steps_tenant_tool_created_idx`;