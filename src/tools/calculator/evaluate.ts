import { CalculatorError } from "./errors";
import { type Token, tokenize } from "./tokenizer";

/** Longest expression accepted (docs/api.md). */
export const MAX_EXPRESSION_CHARS = 500;
/** Deepest nesting of parentheses, unary signs and powers; keeps recursion far from the stack limit. */
export const MAX_DEPTH = 64;

type Fn = { arity: [min: number, max: number]; apply: (args: number[]) => number };

// Maps, not object literals: a lookup of `constructor` or `__proto__` must find nothing.
const FUNCTIONS = new Map<string, Fn>([
  ["sqrt", { arity: [1, 1], apply: ([x]) => Math.sqrt(x as number) }],
  ["abs", { arity: [1, 1], apply: ([x]) => Math.abs(x as number) }],
  [
    "round",
    {
      arity: [1, 2],
      apply: ([x, digits = 0]) => {
        if (!Number.isInteger(digits) || digits < 0 || digits > 15) {
          throw new CalculatorError("round() digits must be an integer between 0 and 15", "math");
        }
        const f = 10 ** digits;
        return Math.round((x as number) * f) / f;
      },
    },
  ],
  ["floor", { arity: [1, 1], apply: ([x]) => Math.floor(x as number) }],
  ["ceil", { arity: [1, 1], apply: ([x]) => Math.ceil(x as number) }],
  ["min", { arity: [1, 100], apply: (xs) => Math.min(...xs) }],
  ["max", { arity: [1, 100], apply: (xs) => Math.max(...xs) }],
  [
    "log",
    {
      arity: [1, 2],
      apply: ([x, base]) => (base === undefined ? Math.log(x as number) : Math.log(x as number) / Math.log(base)),
    },
  ],
  ["exp", { arity: [1, 1], apply: ([x]) => Math.exp(x as number) }],
  ["sin", { arity: [1, 1], apply: ([x]) => Math.sin(x as number) }],
  ["cos", { arity: [1, 1], apply: ([x]) => Math.cos(x as number) }],
  ["tan", { arity: [1, 1], apply: ([x]) => Math.tan(x as number) }],
]);

const CONSTANTS = new Map<string, number>([
  ["pi", Math.PI],
  ["e", Math.E],
]);

function finite(value: number, what: string): number {
  if (Number.isNaN(value)) throw new CalculatorError(`${what} is not a number`, "math");
  if (!Number.isFinite(value)) throw new CalculatorError(`${what} is too large (not finite)`, "math");
  return value;
}

/** Recursive-descent parser that evaluates as it parses; the grammar is in `evaluate`'s doc. */
class Parser {
  private i = 0;
  private depth = 0;
  constructor(private readonly tokens: Token[]) {}

  private peek(): Token {
    return this.tokens[this.i] as Token;
  }
  private next(): Token {
    return this.tokens[this.i++] as Token;
  }
  private enter(): void {
    if (++this.depth > MAX_DEPTH) {
      throw new CalculatorError(`Expression is nested too deeply (more than ${MAX_DEPTH} levels)`);
    }
  }
  private leave(): void {
    this.depth--;
  }

  parse(): number {
    const value = this.additive();
    const t = this.peek();
    if (t.kind !== "end") throw this.unexpected(t);
    return value;
  }

  private additive(): number {
    let left = this.multiplicative();
    for (let t = this.peek(); t.kind === "op" && (t.op === "+" || t.op === "-"); t = this.peek()) {
      this.next();
      const right = this.multiplicative();
      left = finite(t.op === "+" ? left + right : left - right, "Result");
    }
    return left;
  }

  private multiplicative(): number {
    let left = this.unary();
    for (let t = this.peek(); t.kind === "op" && (t.op === "*" || t.op === "/" || t.op === "%"); t = this.peek()) {
      this.next();
      const right = this.unary();
      if (t.op === "*") left = finite(left * right, "Result");
      else if (right === 0) throw new CalculatorError("Division by zero", "math");
      else left = finite(t.op === "/" ? left / right : left % right, "Result");
    }
    return left;
  }

  private unary(): number {
    const t = this.peek();
    if (t.kind === "op" && (t.op === "-" || t.op === "+")) {
      this.next();
      this.enter();
      const value = this.unary();
      this.leave();
      return t.op === "-" ? -value : value;
    }
    return this.power();
  }

  // `^` is right-associative and binds tighter than unary minus on its left: -2^2 = -4, 2^-1 = 0.5.
  private power(): number {
    const base = this.primary();
    const t = this.peek();
    if (t.kind === "op" && t.op === "^") {
      this.next();
      this.enter();
      const exponent = this.unary();
      this.leave();
      if (base === 0 && exponent < 0) throw new CalculatorError("Division by zero", "math");
      return finite(base ** exponent, "Result");
    }
    return base;
  }

  private primary(): number {
    const t = this.next();
    switch (t.kind) {
      case "number":
        return t.value;
      case "lparen": {
        this.enter();
        const value = this.additive();
        this.leave();
        this.expect("rparen", "')'");
        return value;
      }
      case "ident":
        return this.identifier(t.name, t.pos);
      default:
        throw this.unexpected(t);
    }
  }

  private identifier(name: string, pos: number): number {
    const constant = CONSTANTS.get(name);
    if (constant !== undefined) return constant;
    const fn = FUNCTIONS.get(name);
    if (!fn) throw new CalculatorError(`Unknown name '${name}' at position ${pos + 1}`);
    this.expect("lparen", `'(' after ${name}`);
    this.enter();
    const args: number[] = [];
    if (this.peek().kind !== "rparen") {
      args.push(this.additive());
      while (this.peek().kind === "comma") {
        this.next();
        args.push(this.additive());
      }
    }
    this.leave();
    this.expect("rparen", "')'");
    const [min, max] = fn.arity;
    if (args.length < min || args.length > max) {
      const want = min === max ? `${min}` : `${min} to ${max}`;
      throw new CalculatorError(`${name}() takes ${want} argument(s), got ${args.length}`);
    }
    return finite(fn.apply(args), `${name}() result`);
  }

  private expect(kind: Token["kind"], what: string): void {
    const t = this.next();
    if (t.kind !== kind) {
      throw new CalculatorError(`Expected ${what} at position ${t.pos + 1}`);
    }
  }

  private unexpected(t: Token): CalculatorError {
    if (t.kind === "end") return new CalculatorError("Unexpected end of expression");
    return new CalculatorError(`Unexpected token at position ${t.pos + 1}`);
  }
}

/**
 * Evaluates an arithmetic expression without `eval`, `Function` or property access.
 *
 * Grammar: `additive := mul (('+'|'-') mul)*`, `mul := unary (('*'|'/'|'%') unary)*`,
 * `unary := ('+'|'-') unary | power`, `power := primary (('^'|'**') unary)?`,
 * `primary := number | constant | fn '(' args ')' | '(' additive ')'`.
 * Results are rounded to 15 significant digits so `0.1 + 0.2` answers `0.3`.
 *
 * @example evaluate("(41*7)+13") // 300
 */
export function evaluate(expression: string): number {
  if (expression.length > MAX_EXPRESSION_CHARS) {
    throw new CalculatorError(`Expression is longer than ${MAX_EXPRESSION_CHARS} characters`);
  }
  if (expression.trim() === "") throw new CalculatorError("Expression is empty");
  const value = new Parser(tokenize(expression)).parse();
  const rounded = Number(value.toPrecision(15));
  return Object.is(rounded, -0) ? 0 : rounded;
}
