/** The rules planner did not understand the prompt; the run fails with this message. */
export class PromptParseError extends Error {
  constructor(reason: string) {
    super(`Could not parse prompt: ${reason}`);
    this.name = "PromptParseError";
  }
}
