// What the benchmark runners print and write alike: number formats, the
// markdown table, the run's header and the results file.
import fs from 'node:fs';
import path from 'node:path';
import { OUT, ROOT } from './process.mjs';

export const fmt = (n, digits) => (n == null ? '–' : n.toFixed(digits));
export const ratio = (a, b) => (a == null || b == null || b === 0 ? '–' : (a / b).toFixed(2));

// The run standing for several: the one in the middle when ranked by key(run)
// (the lower of the two middle ones for an even count).
export function middleBy(runs, key) {
  const sorted = runs.toSorted((a, b) => key(a) - key(b));
  return sorted[(sorted.length - 1) >> 1];
}

// A markdown table, the first column left-aligned and the others right-aligned.
// A row shorter than the header is padded with empty cells (a failed cell's row).
export function markdownTable(titles, rows) {
  const line = (cells) => `|${cells.map((c) => (c === '' ? ' |' : ` ${c} |`)).join('')}`;
  return [
    line(titles),
    `|${titles.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map((row) => line([...row, ...Array(Math.max(0, titles.length - row.length)).fill('')])),
  ].join('\n');
}

// The lines that open a run's output.
export function printHeader(meta) {
  console.log(`date:    ${meta.date}`);
  console.log(`node:    ${meta.node}`);
  console.log(`kernel:  ${meta.kernel}`);
  console.log(`command: ${meta.command}`);
}

// bench/out/<name>-<date>.json, announced on stdout.
export function writeResults(name, date, data) {
  fs.mkdirSync(OUT, { recursive: true });
  const file = path.join(OUT, `${name}-${date.replaceAll(':', '-')}.json`);
  fs.writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  console.log(`\nresults: ${path.relative(ROOT, file)}`);
}
