/**
 * Upstash-Retry-Delay: a tiny arithmetic language evaluated without eval. Grammar:
 *   expr := term (("+" | "-") term)*      term := unary (("*" | "/" | "%") unary)*
 *   unary := ("-" | "+") unary | primary  primary := number | "retried" | call | "(" expr ")"
 *   call := name "(" expr ("," expr)* ")"  with pow exp min max floor ceil round abs sqrt.
 */

type Node =
  | { kind: "num"; value: number }
  | { kind: "var" }
  | { kind: "neg"; arg: Node }
  | { kind: "bin"; op: string; left: Node; right: Node }
  | { kind: "call"; name: string; args: Node[] };

const FUNCTIONS: Record<string, { arity: [number, number]; fn: (...a: number[]) => number }> = {
  pow: { arity: [2, 2], fn: (a = 0, b = 0) => a ** b },
  exp: { arity: [1, 1], fn: (a = 0) => Math.exp(a) },
  sqrt: { arity: [1, 1], fn: (a = 0) => Math.sqrt(a) },
  abs: { arity: [1, 1], fn: (a = 0) => Math.abs(a) },
  floor: { arity: [1, 1], fn: (a = 0) => Math.floor(a) },
  ceil: { arity: [1, 1], fn: (a = 0) => Math.ceil(a) },
  round: { arity: [1, 1], fn: (a = 0) => Math.round(a) },
  min: { arity: [1, 64], fn: (...a) => Math.min(...a) },
  max: { arity: [1, 64], fn: (...a) => Math.max(...a) },
};

function tokenize(src: string): string[] {
  const tokens: string[] = [];
  const re = /\s*(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|\.\d+|[A-Za-z_]\w*|[-+*/%(),])/y;
  let i = 0;
  while (i < src.length) {
    if (/^\s*$/.test(src.slice(i))) break;
    re.lastIndex = i;
    const m = re.exec(src);
    if (!m || m[1] === undefined) throw new Error(`unexpected character at ${i}: ${src.slice(i, i + 8)}`);
    tokens.push(m[1]);
    i = re.lastIndex;
  }
  return tokens;
}

function parse(src: string): Node {
  const tokens = tokenize(src);
  let pos = 0;
  const peek = () => tokens[pos];
  const expect = (t: string) => {
    if (tokens[pos] !== t) throw new Error(`expected "${t}" but found ${tokens[pos] ?? "end"}`);
    pos++;
  };
  const expr = (): Node => {
    let left = term();
    while (peek() === "+" || peek() === "-") {
      const op = tokens[pos++] as string;
      left = { kind: "bin", op, left, right: term() };
    }
    return left;
  };
  const term = (): Node => {
    let left = unary();
    while (peek() === "*" || peek() === "/" || peek() === "%") {
      const op = tokens[pos++] as string;
      left = { kind: "bin", op, left, right: unary() };
    }
    return left;
  };
  const unary = (): Node => {
    if (peek() === "-") return (pos++, { kind: "neg", arg: unary() });
    if (peek() === "+") return (pos++, unary());
    return primary();
  };
  const primary = (): Node => {
    const t = tokens[pos++];
    if (t === undefined) throw new Error("unexpected end of expression");
    if (t === "(") {
      const inner = expr();
      expect(")");
      return inner;
    }
    if (/^[\d.]/.test(t)) return { kind: "num", value: Number(t) };
    if (t === "retried") return { kind: "var" };
    const def = FUNCTIONS[t];
    if (!def) throw new Error(`unknown identifier "${t}"`);
    expect("(");
    const args = [expr()];
    while (peek() === ",") pos++, args.push(expr());
    expect(")");
    if (args.length < def.arity[0] || args.length > def.arity[1]) {
      throw new Error(`${t}() takes ${def.arity[0] === def.arity[1] ? def.arity[0] : "1+"} argument(s)`);
    }
    return { kind: "call", name: t, args };
  };
  const root = expr();
  if (pos !== tokens.length) throw new Error(`unexpected "${tokens[pos]}"`);
  return root;
}

function evaluate(node: Node, retried: number): number {
  switch (node.kind) {
    case "num":
      return node.value;
    case "var":
      return retried;
    case "neg":
      return -evaluate(node.arg, retried);
    case "call":
      return (FUNCTIONS[node.name] as { fn: (...a: number[]) => number }).fn(...node.args.map((a) => evaluate(a, retried)));
    case "bin": {
      const l = evaluate(node.left, retried);
      const r = evaluate(node.right, retried);
      if (node.op === "+") return l + r;
      if (node.op === "-") return l - r;
      if (node.op === "*") return l * r;
      if (node.op === "/") return l / r;
      return l % r;
    }
  }
}

/** Compiles an expression once; throws an Error with a readable message when it is malformed. */
export function compileRetryDelay(src: string): (retried: number) => number {
  const ast = parse(src);
  return (retried) => {
    const v = evaluate(ast, retried);
    return Number.isFinite(v) ? Math.max(0, v) : 0;
  };
}

const cache = new Map<string, (retried: number) => number>();

/** Delay in ms for a retry; `retried` starts at 0 for the first retry, as QStash documents. */
export function retryDelayMs(src: string, retried: number): number {
  let fn = cache.get(src);
  if (!fn) {
    fn = compileRetryDelay(src);
    if (cache.size > 500) cache.clear();
    cache.set(src, fn);
  }
  return fn(retried);
}
