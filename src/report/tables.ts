/** Plain-text tables for the terminal: cosine-similarity tables with one-based labels. */

/** A `[latent][feature]` table with one-based labels and two decimals. */
export function cosSimTable(title: string, table: number[][]): string {
  const cols = table[0]?.length ?? 0;
  const cell = (s: string) => s.padStart(7);
  const head = "latent".padEnd(8) +
    Array.from({ length: cols }, (_, f) => cell(`f${f + 1}`)).join("");
  const rows = table.map((row, l) =>
    String(l + 1).padEnd(8) +
    row.map((v) => cell(v.toFixed(2).replace(/^-0\.00$/, "0.00"))).join("")
  );
  return [title, head, ...rows].join("\n");
}

/** Columns side by side, separated by `gap` spaces. */
export function sideBySide(blocks: string[], gap = 4): string {
  const lines = blocks.map((b) => b.split("\n"));
  const widths = lines.map((l) => Math.max(...l.map((s) => s.length)));
  const height = Math.max(...lines.map((l) => l.length));
  const out: string[] = [];
  for (let i = 0; i < height; i++) {
    out.push(lines.map((l, k) => (l[i] ?? "").padEnd(widths[k]!)).join(" ".repeat(gap)).trimEnd());
  }
  return out.join("\n");
}
