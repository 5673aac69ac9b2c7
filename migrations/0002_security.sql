CREATE TABLE `idempotency_keys` (
	`tenant` text NOT NULL,
	`key` text NOT NULL,
	`body_hash` text NOT NULL,
	`run_id` text NOT NULL,
	`created_at` text NOT NULL,
	PRIMARY KEY(`tenant`, `key`)
);
--> statement-breakpoint
ALTER TABLE `api_keys` ADD `rate_limit_requests` integer;--> statement-breakpoint
ALTER TABLE `api_keys` ADD `rate_limit_window_s` integer;--> statement-breakpoint
ALTER TABLE `api_keys` ADD `max_active_runs` integer;