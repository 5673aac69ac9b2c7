-- v1.1: reruns, compensation and options on the run index; a run's log archived as one row.
-- run_logs and run_steps are WITHOUT ROWID: a row is stored in its primary key, so archiving a
-- step writes one b-tree entry (plus its tool index) instead of a row and a key index — D1 bills
-- rows written, index entries included. (Written by hand: drizzle's schema cannot say WITHOUT ROWID.)
CREATE TABLE `run_logs` (
	`run_id` text NOT NULL,
	`page` integer NOT NULL,
	`tenant` text NOT NULL,
	`last_seq` integer NOT NULL,
	`events` text NOT NULL,
	PRIMARY KEY(`run_id`, `page`)
) WITHOUT ROWID;
--> statement-breakpoint
CREATE TABLE `run_steps_v11` (
	`run_id` text NOT NULL,
	`step_number` integer NOT NULL,
	`tenant` text NOT NULL,
	`tool_name` text NOT NULL,
	`tool_input` text NOT NULL,
	`status` text NOT NULL,
	`output` text,
	`error` text,
	`attempts` integer NOT NULL,
	`started_at` text,
	`completed_at` text,
	`duration_ms` integer,
	`created_at` text NOT NULL,
	PRIMARY KEY(`run_id`, `step_number`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `run_steps_v11` SELECT `run_id`, `step_number`, `tenant`, `tool_name`, `tool_input`, `status`, `output`, `error`, `attempts`, `started_at`, `completed_at`, `duration_ms`, `created_at` FROM `run_steps`;--> statement-breakpoint
DROP TABLE `run_steps`;--> statement-breakpoint
ALTER TABLE `run_steps_v11` RENAME TO `run_steps`;--> statement-breakpoint
CREATE INDEX `run_steps_tenant_tool_created_idx` ON `run_steps` (`tenant`,`tool_name`,`created_at`,`run_id`);--> statement-breakpoint
DROP INDEX `runs_tenant_completed_idx`;--> statement-breakpoint
ALTER TABLE `runs` ADD `rerun_of` text;--> statement-breakpoint
ALTER TABLE `runs` ADD `rerun_from_step` integer;--> statement-breakpoint
ALTER TABLE `runs` ADD `compensation` text;--> statement-breakpoint
ALTER TABLE `runs` ADD `options` text;--> statement-breakpoint
CREATE INDEX `runs_tenant_rerun_of_idx` ON `runs` (`tenant`,`rerun_of`,`created_at`);
