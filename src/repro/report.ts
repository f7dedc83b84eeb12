// The report of a closure rebuild: counts, the percentage reproducible, the
// unreproducible list; as data, text and a self-contained HTML page.

export type ItemStatus = "pending" | "reproducible" | "unreproducible" | "failed" | "skipped";

export interface ClosureItem {
  readonly drvPath: string;
  readonly status: ItemStatus;
  /** Why it failed or was skipped; for unreproducible items, the differing outputs. */
  readonly detail?: string;
  /** The stored reproducibility attestation. */
  readonly attestationId?: number;
}

export interface ClosureSummary {
  readonly root: string;
  readonly closure: "build" | "runtime";
  readonly total: number;
  readonly reproducible: number;
  readonly unreproducible: number;
  readonly failed: number;
  readonly skipped: number;
  readonly pending: number;
  /** reproducible / (reproducible + unreproducible), in percent; null when nothing was compared. */
  readonly percentReproducible: number | null;
  readonly unreproducibleList: readonly string[];
  readonly complete: boolean;
}

export function summarize(
  root: string,
  closure: "build" | "runtime",
  items: readonly ClosureItem[],
): ClosureSummary {
  const count = (s: ItemStatus) => items.filter((i) => i.status === s).length;
  const reproducible = count("reproducible");
  const unreproducible = count("unreproducible");
  const compared = reproducible + unreproducible;
  return {
    root,
    closure,
    total: items.length,
    reproducible,
    unreproducible,
    failed: count("failed"),
    skipped: count("skipped"),
    pending: count("pending"),
    percentReproducible: compared === 0 ? null : Math.round((reproducible / compared) * 1e4) / 100,
    unreproducibleList: items
      .filter((i) => i.status === "unreproducible")
      .map((i) => i.drvPath)
      .sort(),
    complete: count("pending") === 0,
  };
}

export function renderText(s: ClosureSummary, items: readonly ClosureItem[]): string {
  const pct = s.percentReproducible === null ? "n/a" : `${s.percentReproducible}%`;
  const lines = [
    `${s.complete ? "rebuilt" : "rebuilding (incomplete)"} ${s.closure} closure of ${s.root}`,
    `  ${s.total} derivations: ${s.reproducible} reproducible, ${s.unreproducible} unreproducible, ` +
      `${s.failed} failed, ${s.skipped} skipped, ${s.pending} pending`,
    `  reproducible: ${pct} of those compared`,
  ];
  for (const i of items) {
    if (i.status === "unreproducible" || i.status === "failed") {
      lines.push(`  ${i.status.toUpperCase()} ${i.drvPath}${i.detail ? `: ${i.detail}` : ""}`);
    }
  }
  return lines.join("\n") + "\n";
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A single HTML page with no external resources (styles inline, no scripts). */
export function renderHtml(s: ClosureSummary, items: readonly ClosureItem[]): string {
  const pct = s.percentReproducible === null ? "n/a" : `${s.percentReproducible}%`;
  const order: Record<ItemStatus, number> = {
    unreproducible: 0,
    failed: 1,
    pending: 2,
    skipped: 3,
    reproducible: 4,
  };
  const rows = [...items]
    .sort((a, b) => order[a.status] - order[b.status] || a.drvPath.localeCompare(b.drvPath))
    .map(
      (i) =>
        `<tr class="${i.status}"><td>${esc(i.status)}</td><td><code>${esc(i.drvPath)}</code></td>` +
        `<td>${esc(i.detail ?? "")}</td></tr>`,
    )
    .join("\n");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Reproducibility of ${esc(s.root)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; width: 100%; }
td, th { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
code { font-size: 90%; }
.unreproducible td:first-child { color: #b00; font-weight: bold; }
.failed td:first-child { color: #a60; font-weight: bold; }
.reproducible td:first-child { color: #070; }
.summary td { border: none; }
</style>
</head>
<body>
<h1>Reproducibility report</h1>
<p>${esc(s.closure)} closure of <code>${esc(s.root)}</code>${s.complete ? "" : " (incomplete: run again to resume)"}</p>
<table class="summary">
<tr><td>derivations</td><td>${s.total}</td></tr>
<tr><td>reproducible</td><td>${s.reproducible}</td></tr>
<tr><td>unreproducible</td><td>${s.unreproducible}</td></tr>
<tr><td>failed</td><td>${s.failed}</td></tr>
<tr><td>skipped</td><td>${s.skipped}</td></tr>
<tr><td>pending</td><td>${s.pending}</td></tr>
<tr><td>reproducible, of those compared</td><td><strong>${pct}</strong></td></tr>
</table>
<h2>Derivations</h2>
<table>
<tr><th>status</th><th>derivation</th><th>detail</th></tr>
${rows}
</table>
</body>
</html>
`;
}
