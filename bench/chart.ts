// A dependency-free horizontal bar chart in SVG for docs/benchmarks/<name>.svg.
// Every bar is a ratio against the native API or a named anchor, so the chart
// draws a reference line at that anchor (1 unless told) and labels each bar
// with its value. Output is deterministic: the same spec gives the same bytes.

export interface ChartBar {
  label: string;
  /** The ratio; finite and not negative. */
  value: number;
}

export interface ChartGroup {
  /** What the bars of this group compare, and which way is better. */
  label: string;
  bars: ChartBar[];
}

export interface ChartSpec {
  title: string;
  /** The line the bars are read against. @default { value: 1, label: 'native / anchor = 1' } */
  reference?: { value: number; label: string };
  groups: ChartGroup[];
}

const WIDTH = 860;
const LABEL_WIDTH = 360;
const BAR_LEFT = LABEL_WIDTH + 10;
const BAR_RIGHT = WIDTH - 80;
const ROW = 22;
const GROUP_HEADER = 26;
const TOP = 46;
const BOTTOM = 48;
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';

/** Characters of a 12 px bar label that fit the label column (about 6.4 px each). */
const LABEL_CHARS = Math.floor((LABEL_WIDTH - 12) / 6.4);

/** Shortens a label to the label column, ending in an ellipsis; the full text stays in the bar's tooltip. */
export function fitLabel(label: string, max = LABEL_CHARS): string {
  return label.length <= max ? label : `${label.slice(0, max - 1).trimEnd()}…`;
}

/** Escapes text for SVG element content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** The axis end: the next 1, 2 or 5 times a power of ten at or above `max`. */
export function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

/** Formats a ratio with 2 significant decimals below 10, fewer above. */
export function formatRatio(v: number): string {
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function check(spec: ChartSpec): void {
  if (spec.groups.length === 0 || spec.groups.every((g) => g.bars.length === 0)) {
    throw new RangeError(`chart '${spec.title}' has no bars: give at least one group with one bar`);
  }
  for (const g of spec.groups) {
    for (const b of g.bars) {
      if (!Number.isFinite(b.value) || b.value < 0) {
        throw new RangeError(`chart '${spec.title}', bar '${b.label}': value must be a finite ratio >= 0, got ${String(b.value)}`);
      }
    }
  }
  const ref = spec.reference?.value ?? 1;
  if (!Number.isFinite(ref) || ref <= 0) throw new RangeError(`chart '${spec.title}': reference must be a positive finite number, got ${String(ref)}`);
}

/** Renders the chart as a standalone SVG document. Throws RangeError on an empty chart or a bad value. */
export function renderBarChart(spec: ChartSpec): string {
  check(spec);
  const reference = spec.reference ?? { value: 1, label: 'native / anchor = 1' };
  const values = spec.groups.flatMap((g) => g.bars.map((b) => b.value));
  const axisMax = niceMax(Math.max(reference.value, ...values) * 1.02);
  const x = (v: number): number => BAR_LEFT + ((BAR_RIGHT - BAR_LEFT) * v) / axisMax;
  const rows = spec.groups.reduce((n, g) => n + g.bars.length, 0);
  const height = TOP + spec.groups.length * GROUP_HEADER + rows * ROW + BOTTOM;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="${escapeXml(spec.title)}">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="12" y="24" ${FONT} font-size="15" font-weight="600" fill="#1f2328">${escapeXml(spec.title)}</text>`,
  ];
  const plotTop = TOP - 8;
  const plotBottom = height - BOTTOM + 4;
  // Grid and ticks: five steps to the axis end.
  for (let i = 0; i <= 5; i++) {
    const v = (axisMax * i) / 5;
    const gx = x(v).toFixed(1);
    out.push(`<line x1="${gx}" y1="${plotTop}" x2="${gx}" y2="${plotBottom}" stroke="#d0d7de" stroke-width="1"/>`);
    out.push(`<text x="${gx}" y="${plotBottom + 14}" ${FONT} font-size="11" fill="#57606a" text-anchor="middle">${formatRatio(v)}</text>`);
  }
  let y = TOP;
  for (const g of spec.groups) {
    out.push(`<text x="12" y="${y + 16}" ${FONT} font-size="12" font-weight="600" fill="#1f2328">${escapeXml(g.label)}</text>`);
    y += GROUP_HEADER;
    for (const b of g.bars) {
      const w = Math.max(0, x(b.value) - BAR_LEFT);
      const fill = b.value >= reference.value ? '#2f81f7' : '#bf8700';
      out.push(`<text x="${LABEL_WIDTH}" y="${y + 15}" ${FONT} font-size="12" fill="#1f2328" text-anchor="end">${escapeXml(fitLabel(b.label))}</text>`);
      out.push(
        `<rect class="bar" x="${BAR_LEFT}" y="${y + 4}" width="${w.toFixed(1)}" height="${ROW - 8}" fill="${fill}" data-value="${b.value}"><title>${escapeXml(`${b.label}: ${formatRatio(b.value)}`)}</title></rect>`,
      );
      out.push(`<text x="${(BAR_LEFT + w + 5).toFixed(1)}" y="${y + 15}" ${FONT} font-size="12" fill="#1f2328">${formatRatio(b.value)}</text>`);
      y += ROW;
    }
  }
  const rx = x(reference.value).toFixed(1);
  out.push(`<line class="reference" x1="${rx}" y1="${plotTop}" x2="${rx}" y2="${plotBottom}" stroke="#cf222e" stroke-width="1.5" stroke-dasharray="4 3"/>`);
  out.push(`<text x="${rx}" y="${plotBottom + 30}" ${FONT} font-size="11" fill="#cf222e" text-anchor="middle">${escapeXml(reference.label)}</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
