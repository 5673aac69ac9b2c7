CREATE TABLE `run_events` (
	`run_id` text NOT NULL,
	`seq` integer NOT NULL,
	`type` text NOT NULL,
	`at` text NOT NULL,
	`step_number` integer,
	`attempt` integer,
	`data` text,
	PRIMARY KEY(`run_id`, `seq`)
);
--> statement-breakpoint
CREATE TABLE `run_steps` (
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
);
--> statement-breakpoint
CREATE INDEX `run_steps_tenant_tool_created_idx` ON `run_steps` (`tenant`,`tool_name`,`created_at`,`run_id`);--> statement-breakpoint
CREATE INDEX `run_steps_tenant_completed_idx` ON `run_steps` (`tenant`,`completed_at`);--> statement-breakpoint
CREATE TABLE `runs` (
	`run_id` text PRIMARY KEY NOT NULL,
	`tenant` text NOT NULL,
	`prompt` text NOT NULL,
	`status` text NOT NULL,
	`planner` text,
	`plan` text,
	`step_count` integer NOT NULL,
	`result` text,
	`error` text,
	`created_at` text NOT NULL,
	`started_at` text,
	`completed_at` text,
	`duration_ms` integer,
	`seq` integer NOT NULL,
	`archived` integer DEFAULT false NOT NULL
);
--> statement-breakpoint
CREATE INDEX `runs_tenant_created_idx` ON `runs` (`tenant`,`created_at`,`run_id`);--> statement-breakpoint
CREATE INDEX `runs_tenant_status_created_idx` ON `runs` (`tenant`,`status`,`created_at`,`run_id`);--> statement-breakpoint
CREATE INDEX `runs_tenant_completed_idx` ON `runs` (`tenant`,`completed_at`);