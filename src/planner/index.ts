export { PromptParseError } from "./errors";
export type { LlmCall } from "./llm";
export { LlmPlanError, planWithLlm } from "./llm";
export { planWithRules } from "./rules";
