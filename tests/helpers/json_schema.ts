/**
 * A small JSON Schema validator: the subset `docs/json-schema.json` uses (draft 2020-12
 * keywords `$ref` to `#/$defs/...`, `allOf`, `anyOf`, `oneOf`, `type`, `const`, `enum`,
 * `pattern`, `minimum`, `maximum`, `minItems`, `maxItems`, `items`, `properties`, `required`,
 * `additionalProperties`, `propertyNames`, and boolean schemas). A keyword outside the subset is
 * an error, so that the schema never says more than what is checked.
 */

/** A schema of the subset. */
export type Schema = boolean | { [keyword: string]: unknown };

/** Keywords that only document. */
const ANNOTATIONS = new Set(["$schema", "$defs", "title", "description"]);
const KEYWORDS = new Set([
  "$ref",
  "allOf",
  "anyOf",
  "oneOf",
  "type",
  "const",
  "enum",
  "pattern",
  "minimum",
  "maximum",
  "minItems",
  "maxItems",
  "items",
  "properties",
  "required",
  "additionalProperties",
  "propertyNames",
]);

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

function equal(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Validates values against one schema document (its `$defs` resolve `$ref`s). */
export class SchemaValidator {
  readonly #root: { [keyword: string]: unknown };

  /** @param root the schema document */
  constructor(root: { [keyword: string]: unknown }) {
    this.#root = root;
  }

  /**
   * The errors of `value` against the root schema, or against `#/$defs/NAME` when `def` is
   * given; none when it is valid.
   */
  errors(value: unknown, def?: string): string[] {
    const schema = def === undefined ? this.#root : this.#resolve(`#/$defs/${def}`);
    const out: string[] = [];
    this.#check(schema, value, "$", out);
    return out;
  }

  #resolve(ref: string): Schema {
    const m = /^#\/\$defs\/([A-Za-z0-9_]+)$/.exec(ref);
    const defs = this.#root.$defs as Record<string, Schema> | undefined;
    const s = m === null ? undefined : defs?.[m[1]!];
    if (s === undefined) throw new Error(`schema: unresolved $ref ${ref}`);
    return s;
  }

  #check(schema: Schema, v: unknown, at: string, out: string[]): void {
    if (schema === true) return;
    if (schema === false) {
      out.push(`${at}: not allowed`);
      return;
    }
    for (const k of Object.keys(schema)) {
      if (!KEYWORDS.has(k) && !ANNOTATIONS.has(k)) throw new Error(`schema: keyword ${k} at ${at}`);
    }
    const s = schema as Record<string, unknown>;
    if (s.$ref !== undefined) this.#check(this.#resolve(s.$ref as string), v, at, out);
    for (const sub of (s.allOf as Schema[] | undefined) ?? []) this.#check(sub, v, at, out);
    if (s.anyOf !== undefined) {
      const tries = (s.anyOf as Schema[]).map((sub) => this.#sub(sub, v, at));
      if (!tries.some((e) => e.length === 0)) out.push(...fewest(tries, `${at}: matches no anyOf`));
    }
    if (s.oneOf !== undefined) {
      const tries = (s.oneOf as Schema[]).map((sub) => this.#sub(sub, v, at));
      const ok = tries.filter((e) => e.length === 0).length;
      if (ok === 0) out.push(...fewest(tries, `${at}: matches no oneOf`));
      else if (ok > 1) out.push(`${at}: matches ${ok} oneOf branches`);
    }
    const t = typeOf(v);
    if (s.type !== undefined) {
      const types = Array.isArray(s.type) ? s.type as string[] : [s.type as string];
      if (!types.some((x) => x === t || (x === "number" && t === "integer"))) {
        out.push(`${at}: ${JSON.stringify(v)} is not ${types.join(" or ")}`);
        return;
      }
    }
    if ("const" in s && !equal(v, s.const)) {
      out.push(`${at}: ${JSON.stringify(v)} is not ${JSON.stringify(s.const)}`);
    }
    if (s.enum !== undefined && !(s.enum as unknown[]).some((e) => equal(e, v))) {
      out.push(`${at}: ${JSON.stringify(v)} is not one of ${JSON.stringify(s.enum)}`);
    }
    if (typeof v === "string" && s.pattern !== undefined) {
      if (!new RegExp(s.pattern as string, "u").test(v)) {
        out.push(`${at}: ${JSON.stringify(v)} does not match ${s.pattern}`);
      }
    }
    if (typeof v === "number") {
      if (s.minimum !== undefined && v < (s.minimum as number)) {
        out.push(`${at}: ${v} < ${s.minimum}`);
      }
      if (s.maximum !== undefined && v > (s.maximum as number)) {
        out.push(`${at}: ${v} > ${s.maximum}`);
      }
    }
    if (Array.isArray(v)) {
      if (s.minItems !== undefined && v.length < (s.minItems as number)) {
        out.push(`${at}: fewer than ${s.minItems} items`);
      }
      if (s.maxItems !== undefined && v.length > (s.maxItems as number)) {
        out.push(`${at}: more than ${s.maxItems} items`);
      }
      if (s.items !== undefined) {
        v.forEach((x, i) => this.#check(s.items as Schema, x, `${at}[${i}]`, out));
      }
    }
    if (t === "object") this.#object(s, v as Record<string, unknown>, at, out);
  }

  #object(s: Record<string, unknown>, v: Record<string, unknown>, at: string, out: string[]) {
    const props = (s.properties ?? {}) as Record<string, Schema>;
    for (const r of (s.required as string[] | undefined) ?? []) {
      if (!Object.hasOwn(v, r)) out.push(`${at}: no ${r}`);
    }
    for (const [k, x] of Object.entries(v)) {
      const where = `${at}.${k}`;
      if (s.propertyNames !== undefined) {
        this.#check(s.propertyNames as Schema, k, `${where} (name)`, out);
      }
      if (Object.hasOwn(props, k)) this.#check(props[k]!, x, where, out);
      else if (s.additionalProperties !== undefined) {
        this.#check(s.additionalProperties as Schema, x, where, out);
      }
    }
  }

  #sub(schema: Schema, v: unknown, at: string): string[] {
    const out: string[] = [];
    this.#check(schema, v, at, out);
    return out;
  }
}

/** The errors of the branch that came closest, under a heading. */
function fewest(tries: string[][], heading: string): string[] {
  const best = tries.reduce((a, b) => (b.length < a.length ? b : a));
  return [heading, ...best.map((e) => `  ${e}`)];
}
