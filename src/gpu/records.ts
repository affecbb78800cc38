/**
 * Record tables: the one description of a record the GPU and the host share (a loss record, a
 * uniform, a header of a packed buffer). A record is a name and ordered fields of 32-bit words
 * (`u32` or `f32`, optionally an array, or an array of a nested record); from it come the word
 * offsets and size the host packs and decodes by name ({@link writeRecord}, {@link readField},
 * {@link readRecord}) and the WGSL declarations ({@link recordWgsl}: a struct with explicit
 * padding fields and/or `const <PREFIX>_<FIELD>: u32` word offsets), so neither side spells an
 * offset by hand.
 *
 * Field names are camelCase on the host; in WGSL a field is snake_case (`gradNorm` →
 * `grad_norm`) and its offset constant SCREAMING_CASE (`LOSS_GRAD_NORM`).
 */

/** The word types of a field. */
export type WordType = "u32" | "f32";

/** One field of a record, as written in a table. */
export type FieldSpec =
  | {
    readonly name: string;
    readonly type: WordType;
    /** Array length (absent: one word). */
    readonly count?: number;
    /** What it holds (becomes a WGSL comment). */
    readonly doc?: string;
  }
  | {
    readonly name: string;
    /** An array of `count` nested records. */
    readonly record: RecordTable;
    readonly count: number;
    readonly doc?: string;
  }
  | {
    /** Unused words (`_padN: u32` in WGSL); no offset, never packed. */
    readonly pad: number;
  };

/** A field of a {@link RecordTable}, with its word offset in the record. */
export interface RecordField {
  /** camelCase name (snake_case in WGSL). */
  readonly name: string;
  /** The scalar type, or the nested record. */
  readonly type: WordType | RecordTable;
  /** Array length, or undefined for one scalar word. */
  readonly count: number | undefined;
  /** Word offset of the field (of its first element) in the record. */
  readonly offset: number;
  /** Words per element (1, or the nested record's size). */
  readonly stride: number;
  /** What it holds. */
  readonly doc: string | undefined;
}

/** How a record is declared in WGSL. */
export interface RecordOptions {
  /** Prefix of the offset constants, e.g. `LOSS` (absent: no constants). */
  readonly constPrefix?: string;
  /** Emit `struct <name>` (default true). */
  readonly struct?: boolean;
  /**
   * Bound as `var<uniform>`: nested records and arrays are refused (their WGSL uniform stride
   * would not be packed), and the size is padded to a multiple of 4 words (16 bytes).
   */
  readonly uniform?: boolean;
  /** What the record is (becomes the WGSL comment above it). */
  readonly doc?: string;
}

/** A record table: its fields with offsets, and its size in words. */
export interface RecordTable<N extends string = string> {
  /** The WGSL struct name, e.g. `ModelInfo`. */
  readonly name: string;
  /** Fields in order (padding excluded). */
  readonly fields: readonly RecordField[];
  /** Word offset of each field by name. */
  readonly offset: { readonly [K in N]: number };
  /** Words per record, padding included. */
  readonly words: number;
  /** Padding words before each field index (and at `fields.length`: at the end). */
  readonly padsBefore: readonly number[];
  /** How it is declared in WGSL. */
  readonly options: RecordOptions;
}

/** A value for one field: a number (booleans pack as 1/0), an array, or nested records. */
export type FieldValue = number | boolean | readonly number[] | readonly RecordValues[];
/** Values by field name; absent fields pack as 0. */
export type RecordValues = { readonly [name: string]: FieldValue | undefined };

type NamesOf<F extends readonly FieldSpec[]> = Extract<F[number], { name: string }>["name"];

/**
 * Defines a record from its ordered fields.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineRecord } from "./records.ts";
 *
 * const point = defineRecord("Point", [
 *   { name: "x", type: "f32" },
 *   { name: "tag", type: "u32" },
 * ], { constPrefix: "POINT", uniform: true });
 * assert.equal(point.offset.tag, 1);
 * assert.equal(point.words, 4); // padded to 16 bytes
 * const list = defineRecord("List", [{ name: "n", type: "u32" }, { name: "items", type: "f32", count: 3 }]);
 * assert.equal(list.offset.items, 1);
 * assert.equal(list.words, 4);
 * ```
 */
export function defineRecord<const F extends readonly FieldSpec[]>(
  name: string,
  specs: F,
  options: RecordOptions = {},
): RecordTable<NamesOf<F>> {
  const fields: RecordField[] = [];
  const padsBefore: number[] = [];
  let at = 0;
  let pad = 0;
  for (const spec of specs) {
    if ("pad" in spec) {
      pad += spec.pad;
      at += spec.pad;
      continue;
    }
    if (fields.some((f) => f.name === spec.name)) {
      throw new Error(`Record ${name}: duplicate field ${spec.name}`);
    }
    const type = "record" in spec ? spec.record : spec.type;
    const count = spec.count;
    if (count !== undefined && !(Number.isInteger(count) && count >= 1)) {
      throw new RangeError(`Record ${name}.${spec.name}: count must be a positive integer`);
    }
    if (options.uniform && (count !== undefined || typeof type !== "string")) {
      throw new Error(`Record ${name}.${spec.name}: a uniform record holds only scalar fields`);
    }
    const stride = typeof type === "string" ? 1 : type.words;
    padsBefore.push(pad);
    pad = 0;
    fields.push({ name: spec.name, type, count, offset: at, stride, doc: spec.doc });
    at += stride * (count ?? 1);
  }
  if (options.uniform) {
    const padded = Math.max(4, Math.ceil(at / 4) * 4);
    pad += padded - at;
    at = padded;
  }
  padsBefore.push(pad);
  const offset = Object.fromEntries(fields.map((f) => [f.name, f.offset])) as {
    [K in NamesOf<F>]: number;
  };
  return { name, fields, offset, words: at, padsBefore, options };
}

function fieldOf(table: RecordTable, name: string): RecordField {
  const field = table.fields.find((f) => f.name === name);
  if (!field) throw new Error(`Record ${table.name} has no field ${name}`);
  return field;
}

/**
 * Writes `values` into the record at word `base` of `words` (fields not given are left as they
 * are; f32 fields are stored as their bit patterns).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineRecord, readField, writeRecord } from "./records.ts";
 *
 * const rec = defineRecord("R", [{ name: "n", type: "u32" }, { name: "w", type: "f32" }]);
 * const words = new Uint32Array(2 * rec.words);
 * writeRecord(rec, words, rec.words, { n: 7, w: 0.5 });
 * assert.equal(readField(rec, words, rec.words, "w"), 0.5);
 * assert.equal(words[rec.words + rec.offset.n], 7);
 * ```
 */
export function writeRecord(
  table: RecordTable,
  words: Uint32Array,
  base: number,
  values: RecordValues,
): void {
  const floats = new Float32Array(words.buffer, words.byteOffset, words.length);
  if (base < 0 || base + table.words > words.length) {
    throw new RangeError(`Record ${table.name} at word ${base} does not fit ${words.length} words`);
  }
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined) continue;
    const field = fieldOf(table, name);
    const at = base + field.offset;
    const list = Array.isArray(value) ? value as readonly (number | RecordValues)[] : null;
    if ((list === null) !== (field.count === undefined)) {
      throw new TypeError(`Record ${table.name}.${name}: expected ${field.count ?? "no"} array`);
    }
    if (list && list.length > field.count!) {
      throw new RangeError(
        `Record ${table.name}.${name}: ${list.length} values, at most ${field.count} fit`,
      );
    }
    const items = list ?? [value as number | boolean];
    items.forEach((item, i) => {
      if (typeof field.type !== "string") {
        writeRecord(field.type, words, at + i * field.stride, item as RecordValues);
      } else if (field.type === "f32") {
        floats[at + i] = item as number;
      } else {
        const n = typeof item === "boolean" ? (item ? 1 : 0) : item as number;
        if (!(Number.isInteger(n) && n >= 0 && n <= 0xffffffff)) {
          throw new RangeError(`Record ${table.name}.${name}: ${n} is not a u32`);
        }
        words[at + i] = n;
      }
    });
  }
}

/**
 * Packs one record per entry of `list` into a fresh word array of `list.length` records.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineRecord, packRecords } from "./records.ts";
 *
 * const rec = defineRecord("R", [{ name: "a", type: "u32" }, { pad: 1 }, { name: "b", type: "u32" }]);
 * assert.deepEqual(Array.from(packRecords(rec, [{ a: 1, b: 2 }, { b: 3 }])), [1, 0, 2, 0, 0, 3]);
 * ```
 */
export function packRecords(
  table: RecordTable,
  list: readonly RecordValues[],
): Uint32Array<ArrayBuffer> {
  const words = new Uint32Array(list.length * table.words);
  list.forEach((values, i) => writeRecord(table, words, i * table.words, values));
  return words;
}

/**
 * Reads element `index` (0 for a scalar field) of scalar field `name` of the record at word `base`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineRecord, packRecords, readField } from "./records.ts";
 *
 * const rec = defineRecord("R", [{ name: "v", type: "f32", count: 3 }]);
 * const words = packRecords(rec, [{ v: [1, 2.5] }]);
 * assert.equal(readField(rec, words, 0, "v", 1), 2.5);
 * ```
 */
export function readField(
  table: RecordTable,
  words: Uint32Array | Float32Array,
  base: number,
  name: string,
  index = 0,
): number {
  const field = fieldOf(table, name);
  if (typeof field.type !== "string") {
    throw new TypeError(`Record ${table.name}.${name} is a nested record: use readRecord`);
  }
  if (!(Number.isInteger(index) && index >= 0 && index < (field.count ?? 1))) {
    throw new RangeError(`Record ${table.name}.${name}: index ${index} out of range`);
  }
  const at = base + field.offset + index;
  if (at >= words.length) throw new RangeError(`Record ${table.name}: word ${at} out of range`);
  const bits = new Uint32Array(words.buffer, words.byteOffset, words.length);
  return field.type === "f32" ? new Float32Array(bits.buffer, bits.byteOffset)[at]! : bits[at]!;
}

/** A decoded record: numbers, number arrays and nested record arrays by field name. */
export type DecodedRecord = { [name: string]: number | number[] | DecodedRecord[] };

/**
 * Decodes every field of the record at word `base` of `words` (u32 and f32 by type).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineRecord, packRecords, readRecord } from "./records.ts";
 *
 * const inner = defineRecord("In", [{ name: "k", type: "u32" }]);
 * const outer = defineRecord("Out", [{ name: "s", type: "f32" }, { name: "items", record: inner, count: 2 }]);
 * const words = packRecords(outer, [{ s: 0.25, items: [{ k: 4 }, { k: 5 }] }]);
 * assert.deepEqual(readRecord(outer, words, 0), { s: 0.25, items: [{ k: 4 }, { k: 5 }] });
 * ```
 */
export function readRecord(
  table: RecordTable,
  words: Uint32Array | Float32Array,
  base: number,
): DecodedRecord {
  const out: DecodedRecord = {};
  for (const field of table.fields) {
    const nested = field.type;
    if (typeof nested !== "string") {
      out[field.name] = Array.from(
        { length: field.count ?? 1 },
        (_, i) => readRecord(nested, words, base + field.offset + i * field.stride),
      );
    } else if (field.count === undefined) {
      out[field.name] = readField(table, words, base, field.name);
    } else {
      out[field.name] = Array.from(
        { length: field.count },
        (_, i) => readField(table, words, base, field.name, i),
      );
    }
  }
  return out;
}

/** `gradNorm` → `grad_norm`; `applyBDecToInput` → `apply_b_dec_to_input`. */
export function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * The WGSL declarations of a record: a comment, `const <PREFIX>_WORDS` and one offset constant per
 * field (when `constPrefix` is set), and the struct with `_padN: u32` fields where the table has
 * padding (unless `struct: false`). Nested records are declared by their own tables, first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineRecord, recordWgsl } from "./records.ts";
 *
 * const rec = defineRecord("Pair", [{ name: "lrEnd", type: "f32" }], { constPrefix: "PAIR", uniform: true });
 * const code = recordWgsl(rec);
 * assert.match(code, /const PAIR_LR_END: u32 = 0u;/);
 * assert.match(code, /struct Pair \{\n  lr_end: f32,\n  _pad0: u32,/);
 * ```
 */
export function recordWgsl(table: RecordTable): string {
  const { constPrefix, struct = true, doc } = table.options;
  const lines: string[] = [];
  if (doc) lines.push(...doc.split("\n").map((l) => `// ${l}`));
  lines.push(`// Record ${table.name}: ${table.words} words.`);
  if (constPrefix) {
    lines.push(`const ${constPrefix}_WORDS: u32 = ${table.words}u;`);
    for (const f of table.fields) {
      lines.push(`const ${constPrefix}_${snakeCase(f.name).toUpperCase()}: u32 = ${f.offset}u;`);
    }
  }
  if (struct) {
    lines.push(`struct ${table.name} {`);
    let pads = 0;
    const padLines = (n: number) => {
      for (let i = 0; i < n; i++) lines.push(`  _pad${pads++}: u32,`);
    };
    table.fields.forEach((f, i) => {
      padLines(table.padsBefore[i]!);
      const type = typeof f.type === "string" ? f.type : f.type.name;
      const decl = f.count === undefined ? type : `array<${type}, ${f.count}>`;
      lines.push(`  ${snakeCase(f.name)}: ${decl},${f.doc ? ` // ${f.doc}` : ""}`);
    });
    padLines(table.padsBefore[table.fields.length]!);
    lines.push("}");
  }
  return lines.join("\n") + "\n";
}
