CREATE TABLE `run_logs` (
	`run_id` text NOT NULL,
	`page` integer NOT NULL,
	`tenant` text NOT NULL,
	`last_seq` integer NOT NULL,
	`events` text NOT NULL,
	PRIMARY KEY(`run_id`, `page`)
);
--> statement-breakpoint
ALTER TABLE `runs` ADD `rerun_of` text;--> statement-breakpoint
ALTER TABLE `runs` ADD `rerun_from_step` integer;--> statement-breakpoint
ALTER TABLE `runs` ADD `compensation` text;--> statement-breakpoint
ALTER TABLE `runs` ADD `options` text;--> statement-breakpoint
CREATE INDEX `runs_tenant_rerun_of_idx` ON `runs` (`tenant`,`rerun_of`,`created_at`);