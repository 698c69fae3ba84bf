/**
 * The benchmarks page generator: the SVG bar chart draws each ratio to scale
 * against its reference line, escapes text and refuses bad values; the page
 * keeps every recorded section, in order, with its table and chart link; and
 * rendering from the recorded JSON writes the page and one SVG per result.
 */
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { escapeXml, fitLabel, niceMax, renderBarChart } from '../../bench/chart.js';
import type { ChartSpec } from '../../bench/chart.js';
import { benchGoal, renderDocs } from '../../bench/harness.js';
import { PAGE_HEADER, renderPage, renderSection, renderTable } from '../../bench/page.js';
import type { RecordedResult } from '../../bench/page.js';

const spec: ChartSpec = {
  title: 'Kafka <b> & "friends"',
  groups: [
    { label: 'group one', bars: [{ label: 'native', value: 1 }, { label: 'txkit', value: 3.7 }] },
    { label: 'group two', bars: [{ label: 'slow', value: 0.25 }] },
  ],
};

function bars(svg: string): { width: number; value: number }[] {
  return [...svg.matchAll(/<rect class="bar" x="[\d.]+" y="[\d.]+" width="([\d.]+)" height="[\d.]+" fill="#\w+" data-value="([\d.]+)"><title>/g)].map((m) => ({
    width: Number(m[1]),
    value: Number(m[2]),
  }));
}

function record(name: string, over: Partial<RecordedResult> = {}): RecordedResult {
  return {
    name,
    title: `${name} title`,
    command: `npm run bench -- ${name}`,
    summary: `summary of ${name}`,
    table: { headers: ['variant', 'ratio'], rows: [['native', '1.00'], ['txkit', '1.05']] },
    chart: { title: `${name} chart`, groups: [{ label: 'g', bars: [{ label: 'txkit', value: 1.05 }] }] },
    date: '2026-11-22',
    node: 'v20.20.2',
    ...over,
  };
}

describe('renderBarChart', () => {
  it('draws bar widths proportional to the ratios, with the reference line at 1', () => {
    const svg = renderBarChart(spec);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    const drawn = bars(svg);
    expect(drawn.map((b) => b.value)).toEqual([1, 3.7, 0.25]);
    const perUnit = (drawn[0] as { width: number }).width;
    for (const b of drawn) expect(b.width).toBeCloseTo(b.value * perUnit, 0);
    const ref = /<line class="reference" x1="([\d.]+)"/.exec(svg);
    const barLeft = Number(/<rect class="bar" x="([\d.]+)"/.exec(svg)?.[1]);
    expect(Number(ref?.[1]) - barLeft).toBeCloseTo(perUnit, 0);
    // The axis ends at a round number at or above the largest bar.
    expect(svg).toContain('>5.00</text>');
  });

  it('colours bars below the reference differently from those at or above it', () => {
    const svg = renderBarChart(spec);
    const fills = [...svg.matchAll(/class="bar"[^>]*fill="(#\w+)"/g)].map((m) => m[1]);
    expect(fills[0]).toBe(fills[1]);
    expect(fills[2]).not.toBe(fills[0]);
  });

  it('escapes titles and labels', () => {
    const svg = renderBarChart(spec);
    expect(svg).toContain('Kafka &lt;b&gt; &amp; &quot;friends&quot;');
    expect(svg).not.toContain('<b>');
    expect(escapeXml(`a'b`)).toBe('a&#39;b');
  });

  it('shortens labels wider than the label column and keeps the full label in the tooltip', () => {
    const long = 'raw kafkajs with the producer retry of txkit, first retry after 20 ms, defaults otherwise';
    expect(fitLabel('short')).toBe('short');
    expect(fitLabel(long).length).toBeLessThanOrEqual(54);
    expect(fitLabel(long).endsWith('…')).toBe(true);
    const svg = renderBarChart({ title: 't', groups: [{ label: 'g', bars: [{ label: long, value: 2 }] }] });
    expect(svg).toContain(`>${fitLabel(long)}</text>`);
    expect(svg).toContain(`<title>${long}: 2.00</title>`);
  });

  it('is deterministic', () => {
    expect(renderBarChart(spec)).toBe(renderBarChart(structuredClone(spec)));
  });

  it('refuses a chart without bars, a negative or non-finite ratio, and a bad reference', () => {
    expect(() => renderBarChart({ title: 't', groups: [] })).toThrow(/no bars/);
    expect(() => renderBarChart({ title: 't', groups: [{ label: 'g', bars: [{ label: 'x', value: Number.NaN }] }] })).toThrow(/bar 'x'.*finite/);
    expect(() => renderBarChart({ title: 't', groups: [{ label: 'g', bars: [{ label: 'x', value: -1 }] }] })).toThrow(RangeError);
    expect(() => renderBarChart({ title: 't', reference: { value: 0, label: 'r' }, groups: spec.groups })).toThrow(/reference/);
  });

  it('rounds the axis end up to 1, 2, 2.5 or 5 times a power of ten', () => {
    expect([niceMax(0.3), niceMax(1), niceMax(1.2), niceMax(2.2), niceMax(3.7), niceMax(37), niceMax(0)]).toEqual([0.5, 1, 2, 2.5, 5, 50, 1]);
  });
});

describe('benchmarks page', () => {
  it('renders a section with its markers, run line, summary, table and chart link', () => {
    const section = renderSection(record('sql'));
    expect(section.split('\n')).toEqual([
      '<!-- bench:sql:start -->',
      '## sql title',
      '',
      'Command: `npm run bench -- sql` (run 2026-11-22, Node v20.20.2)',
      '',
      'summary of sql',
      '',
      '| variant | ratio |',
      '| --- | --- |',
      '| native | 1.00 |',
      '| txkit | 1.05 |',
      '',
      '![sql chart](benchmarks/sql.svg)',
      '<!-- bench:sql:end -->',
    ]);
  });

  it('escapes pipes in cells and refuses rows wider than the headers', () => {
    expect(renderTable({ headers: ['a'], rows: [['x | y']] })).toContain('| x \\| y |');
    expect(() => renderTable({ headers: ['a'], rows: [['1', '2']] })).toThrow(/row 0 has 2 cells/);
  });

  it('orders sections as they were added, then others by name, and refuses duplicate names', () => {
    const page = renderPage([record('zeta'), record('outbox'), record('alpha'), record('core')]);
    expect(page.startsWith(PAGE_HEADER)).toBe(true);
    const order = [...page.matchAll(/<!-- bench:(\w+):start -->/g)].map((m) => m[1]);
    expect(order).toEqual(['core', 'outbox', 'alpha', 'zeta']);
    expect(() => renderPage([record('core'), record('core')])).toThrow(/two recorded results are named 'core'/);
  });

  it('gathers every section’s goals in one table after the header, linked to the section, with the reason where a goal is not met', () => {
    const sql = {
      ...record('sql'),
      title: 'SQL: txkit vs knex.transaction (pg, real Postgres)',
      goals: [
        { measure: 'pg ratio', figure: '1.078 [1.055, 1.095]', goal: '<= 1.03', verdict: 'missed' as const, reason: 'client CPU +18 µs' },
        { measure: 'knex ratio', figure: '1.010 [1.001, 1.020]', goal: '<= 1.03', verdict: 'met' as const },
      ],
    };
    const core = { ...record('core'), goals: [{ measure: 'µs added', figure: '0.77 [0.72, 0.81]', goal: '< 1', verdict: 'undecided' as const }] };
    const page = renderPage([sql, record('alpha'), core]);
    const table = page.slice(PAGE_HEADER.length).split('\n');
    expect(table.slice(0, 4)).toEqual(['', '## Goals at a glance', '', expect.stringContaining('1 met, 1 undecided, 1 missed of 3')]);
    expect(table).toContain('| [core](#core-title) (2026-11-22) | µs added | 0.77 [0.72, 0.81] | < 1 | **undecided** |  |');
    expect(table).toContain('| [sql](#sql-txkit-vs-knextransaction-pg-real-postgres) (2026-11-22) | pg ratio | 1.078 [1.055, 1.095] | <= 1.03 | **missed** | client CPU +18 µs |');
    // The anchor is the id the section's heading gets.
    expect(page).toContain('## SQL: txkit vs knex.transaction (pg, real Postgres)');
    expect(page.indexOf('## Goals at a glance')).toBeLessThan(page.indexOf('<!-- bench:core:start -->'));
    // Records without goals add no table.
    expect(renderPage([record('alpha')])).not.toContain('Goals at a glance');
  });

  it('benchGoal keeps a reason only for a goal not met, and does not ask for one otherwise', () => {
    const row = { measure: 'm', figure: '1', goal: '<= 1' };
    expect(benchGoal({ ...row, verdict: 'met' }, () => expect.fail('asked for a reason of a goal met'))).toEqual({ ...row, verdict: 'met' });
    expect(benchGoal({ ...row, verdict: 'missed' }, () => 'why')).toEqual({ ...row, verdict: 'missed', reason: 'why' });
    expect(benchGoal({ ...row, verdict: 'undecided' }, () => undefined)).toEqual({ ...row, verdict: 'undecided' });
  });
});

describe('renderDocs', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('writes the page and one SVG per recorded JSON', () => {
    dir = mkdtempSync(join(tmpdir(), 'txkit-bench-page-'));
    mkdirSync(join(dir, 'benchmarks'));
    for (const r of [record('kafka'), record('core')]) writeFileSync(join(dir, 'benchmarks', `${r.name}.json`), JSON.stringify(r));
    const rendered = renderDocs(dir);
    expect(rendered.map((r) => r.name).sort()).toEqual(['core', 'kafka']);
    const page = readFileSync(join(dir, 'benchmarks.md'), 'utf8');
    expect(page.indexOf('## core title')).toBeGreaterThan(0);
    expect(page.indexOf('## kafka title')).toBeGreaterThan(page.indexOf('## core title'));
    expect(readFileSync(join(dir, 'benchmarks', 'kafka.svg'), 'utf8')).toContain('kafka chart');
  });

  it('refuses a JSON file not named after the result it records', () => {
    dir = mkdtempSync(join(tmpdir(), 'txkit-bench-page-'));
    mkdirSync(join(dir, 'benchmarks'));
    writeFileSync(join(dir, 'benchmarks', 'sql.json'), JSON.stringify(record('core')));
    expect(() => renderDocs(dir)).toThrow(/records 'core': the file must be named after it/);
  });
});
