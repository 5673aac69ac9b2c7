export { PromptParseError } from "./errors";
export type { LlmCall } from "./llm";
export { LlmPlanError, PLAN_MAX_TOKENS, planWithLlm } from "./llm";
export { planWithRules } from "./rules";
