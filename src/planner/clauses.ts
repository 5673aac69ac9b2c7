import type { Json } from "../contracts/common";
import { CalculatorError } from "../tools/calculator/errors";
import { evaluate, MAX_EXPRESSION_CHARS } from "../tools/calculator/evaluate";
import { PromptParseError } from "./errors";
import { approval, pause, waitForSignal, waitUntil } from "./waiting";
import { indexOf, startsWith, stripQuotes, text, type Word } from "./words";

/** A step a clause asks for, before it gets its number. */
export interface Draft {
  tool_name: string;
  tool_input: Record<string, Json>;
  reasoning: string;
}

/** What a clause's plan depends on beyond its words: the run's options. */
export interface ClauseContext {
  /** The longest pause that is a `sleep`; a longer one is a durable `wait`. */
  sleepMaxMs: number;
}

/**
 * Parses one clause; `prev` is the step "it" refers to. Returns null when it is not this kind of
 * clause (whatever `ctx` says: it shapes a clause's steps, never whether the clause is understood).
 */
export type ClauseParser = (ws: Word[], prev: number | null, ctx: ClauseContext) => Draft[] | null;

const REFERENCE_PHRASES = [
  ["the", "previous", "result"],
  ["the", "last", "result"],
  ["the", "result"],
  ["the", "answer"],
  ["that"],
  ["it"],
  ["this"],
];

/** How many words at `i` form a reference to the previous step ("it", "the result"), or 0. */
function referenceLength(ws: readonly Word[], i: number): number {
  for (const phrase of REFERENCE_PHRASES) {
    if (startsWith(ws.slice(i), ...phrase)) return phrase.length;
  }
  return 0;
}

function previous(prev: number | null, phrase: string): number {
  if (prev === null) throw new PromptParseError(`'${phrase}' has nothing to refer to`);
  return prev;
}

const ref = (step: number, path = "") => `{{steps.${step}.output${path}}}`;

const OPERATOR_WORDS: [string[], string][] = [
  [["to", "the", "power", "of"], "^"],
  [["raised", "to"], "^"],
  [["multiplied", "by"], "*"],
  [["divided", "by"], "/"],
  [["plus"], "+"],
  [["minus"], "-"],
  [["times"], "*"],
  [["over"], "/"],
  [["mod"], "%"],
  [["modulo"], "%"],
  [["squared"], "^ 2"],
  [["cubed"], "^ 3"],
];

/** Turns words of arithmetic into an expression, or null when they are not arithmetic. */
function expression(ws: readonly Word[], prev: number | null): string | null {
  if (ws.length === 0) return null;
  const parts: string[] = [];
  for (let i = 0; i < ws.length; ) {
    const refLen = referenceLength(ws, i);
    if (refLen > 0) {
      parts.push(ref(previous(prev, text(ws.slice(i, i + refLen)))));
      i += refLen;
      continue;
    }
    const op = OPERATOR_WORDS.find(([phrase]) => startsWith(ws.slice(i), ...phrase));
    if (op) {
      parts.push(op[1]);
      i += op[0].length;
      continue;
    }
    const w = ws[i] as Word;
    parts.push(i === ws.length - 1 ? text([w]) : w.raw);
    i++;
  }
  const expr = parts.join(" ").trim();
  if (expr === "" || expr.length > MAX_EXPRESSION_CHARS) return null;
  // Only well-formed arithmetic counts; a value error (1/0) is still a calculation, and fails
  // when it runs, with its own message.
  try {
    evaluate(expr.replaceAll(/\{\{steps\.\d{1,6}\.output\}\}/g, "1"));
  } catch (err) {
    if (err instanceof CalculatorError && err.kind === "syntax") return null;
  }
  return expr;
}

const calc = (expr: string): Draft[] => [
  { tool_name: "calculator", tool_input: { expression: expr }, reasoning: `Calculate ${expr}` },
];

const CALC_VERBS = [
  ["calculate"],
  ["compute"],
  ["evaluate"],
  ["solve"],
  ["what", "is"],
  ["what's"],
  ["whats"],
  ["how", "much", "is"],
];

/** "calculate 2 + 2", "what is 5 times 3", or a bare "41 * 7". */
export const calculation: ClauseParser = (ws, prev) => {
  const verb = CALC_VERBS.find((v) => startsWith(ws, ...v));
  const rest = verb ? ws.slice(verb.length) : ws;
  const expr = expression(rest, prev);
  return expr === null ? null : calc(expr);
};

/** "multiply it by 3", "divide 10 by 4", "add 5 to it", "subtract 2 from the result". */
export const arithmeticVerb: ClauseParser = (ws, prev) => {
  const forms: [string, string, (a: string, b: string) => string][] = [
    ["multiply", "by", (a, b) => `(${a}) * (${b})`],
    ["divide", "by", (a, b) => `(${a}) / (${b})`],
    ["add", "to", (a, b) => `(${b}) + (${a})`],
    ["subtract", "from", (a, b) => `(${b}) - (${a})`],
  ];
  for (const [verb, link, build] of forms) {
    if (!startsWith(ws, verb)) continue;
    const at = indexOf(ws, [link], 2);
    if (at < 0) continue;
    const a = expression(ws.slice(1, at), prev);
    const b = expression(ws.slice(at + 1), prev);
    if (a !== null && b !== null) return calc(build(a, b));
  }
  return null;
};

const TODO_NOUNS = new Set(["todo", "task", "to-do"]);
const TODO_PLURALS = new Set(["todos", "tasks", "to-dos"]);

const addTodo = (t: string): Draft => ({
  tool_name: "todo_store",
  tool_input: { action: "add", text: t },
  reasoning: `Add a todo "${t}"`,
});

/** Splits "a, b and c" into its items. */
function listItems(ws: readonly Word[]): string[] {
  const items: string[] = [];
  let current: Word[] = [];
  const flush = () => {
    const t = stripQuotes(text(current));
    if (t !== "") items.push(t);
    current = [];
  };
  for (const w of ws) {
    if (w.low === "and" && current.length > 0) {
      flush();
      continue;
    }
    current.push(w);
    if (w.raw.endsWith(",") || w.raw.endsWith(";")) flush();
  }
  flush();
  return items;
}

/** "add todos for a, b and c", "add todo X", "add X as a todo", "add X to my todos". */
export const addTodos: ClauseParser = (ws) => {
  if (!(startsWith(ws, "add") || startsWith(ws, "create"))) return null;
  let i = 1;
  if (ws[i]?.low === "a" || ws[i]?.low === "an") i++;
  if (ws[i]?.low === "new") i++;
  if (TODO_PLURALS.has(ws[i]?.low ?? "")) {
    i++;
    if (ws[i]?.low === "for" || ws[i]?.low === "") i++;
    const items = listItems(ws.slice(i));
    return items.length > 0 ? items.map(addTodo) : null;
  }
  if (TODO_NOUNS.has(ws[i]?.low ?? "")) {
    i++;
    while (["called", "named", "to", "for", "saying", ""].includes(ws[i]?.low ?? "-")) i++;
    const t = stripQuotes(text(ws.slice(i)));
    return t === "" ? null : [addTodo(t)];
  }
  const body = ws.slice(1);
  for (const tail of [
    ["as", "a", "todo"],
    ["as", "a", "task"],
    ["as", "todo"],
    ["as", "a", "to-do"],
  ]) {
    const at = indexOf(body, tail);
    if (at > 0 && at + tail.length === body.length) return [addTodo(stripQuotes(text(body.slice(0, at))))];
  }
  for (const tail of [
    ["to", "my", "todos"],
    ["to", "the", "todos"],
    ["to", "todos"],
    ["to", "my", "todo", "list"],
    ["to", "the", "todo", "list"],
    ["to", "my", "list"],
  ]) {
    const at = indexOf(body, tail);
    if (at > 0 && at + tail.length === body.length) return [addTodo(stripQuotes(text(body.slice(0, at))))];
  }
  return null;
};

/** "list todos", "show my todos", "what are my todos". */
export const listTodos: ClauseParser = (ws) => {
  let i = 0;
  if (startsWith(ws, "what", "are")) i = 2;
  else if (["list", "show", "display", "get"].includes(ws[0]?.low ?? "")) i = 1;
  else return null;
  while (["me", "my", "all", "the", "of", "current"].includes(ws[i]?.low ?? "-")) i++;
  const noun = ws.slice(i).map((w) => w.low);
  const ok =
    (noun.length === 1 && TODO_PLURALS.has(noun[0] as string)) ||
    (noun.length === 2 && TODO_NOUNS.has(noun[0] as string) && noun[1] === "list");
  return ok ? [{ tool_name: "todo_store", tool_input: { action: "list" }, reasoning: "List the todos" }] : null;
};

/** "get todo ID", "complete todo ID", "mark todo ID as done", "delete it". */
export const todoById: ClauseParser = (ws, prev) => {
  const forms: [string[], "get" | "complete" | "delete"][] = [
    [["get"], "get"],
    [["show"], "get"],
    [["complete"], "complete"],
    [["finish"], "complete"],
    [["mark"], "complete"],
    [["delete"], "delete"],
    [["remove"], "delete"],
  ];
  const form = forms.find(([verb]) => startsWith(ws, ...verb));
  if (!form) return null;
  const [verb, action] = form;
  let rest = ws.slice(verb.length);
  if (verb[0] === "mark") {
    const tail = rest.slice(-2).map((w) => w.low);
    if (tail[0] !== "as" || !["done", "complete", "completed", "finished"].includes(tail[1] ?? "")) return null;
    rest = rest.slice(0, -2);
  }
  const hasNoun = TODO_NOUNS.has(rest[0]?.low ?? "");
  if (hasNoun) rest = rest.slice(1);
  if (rest.length === 0) return null;
  const refLen = referenceLength(rest, 0);
  let id: string;
  if (refLen > 0 && refLen === rest.length) {
    id = ref(previous(prev, text(rest)), ".todo.id");
  } else if (hasNoun && rest.length === 1) {
    id = text(rest).replace(/^#/, "");
  } else {
    return null;
  }
  return [{ tool_name: "todo_store", tool_input: { action, todo_id: id }, reasoning: `${action} todo ${id}` }];
};

/** "uppercase hello", "reverse it", "count the words in …". */
export const textOperation: ClauseParser = (ws, prev) => {
  const forms: [string[], string][] = [
    [["uppercase"], "uppercase"],
    [["lowercase"], "lowercase"],
    [["reverse"], "reverse"],
    [["trim"], "trim"],
    [["count", "the", "words", "in"], "word_count"],
    [["count", "words", "in"], "word_count"],
    [["count", "the", "characters", "in"], "char_count"],
    [["count", "characters", "in"], "char_count"],
  ];
  const form = forms.find(([verb]) => startsWith(ws, ...verb));
  if (!form) return null;
  const rest = ws.slice(form[0].length);
  if (rest.length === 0) return null;
  const refLen = referenceLength(rest, 0);
  const input = refLen > 0 && refLen === rest.length ? ref(previous(prev, text(rest))) : stripQuotes(text(rest));
  return [{ tool_name: "text", tool_input: { operation: form[1], text: input }, reasoning: `${form[1]} of text` }];
};

/** Tried in order; the first that understands the clause wins. */
export const CLAUSE_PARSERS: ClauseParser[] = [
  addTodos,
  listTodos,
  todoById,
  arithmeticVerb,
  textOperation,
  approval,
  waitForSignal,
  waitUntil,
  pause,
  calculation,
];
