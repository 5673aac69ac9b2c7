DROP INDEX `runs_tenant_rerun_of_idx`;--> statement-breakpoint
CREATE INDEX `runs_tenant_rerun_of_idx` ON `runs` (`tenant`,`rerun_of`,`created_at`) WHERE "runs"."rerun_of" IS NOT NULL;