/** Usage: tokens and cost by day, bot, model or user over a date range, as charts with a table beside. */
import { useState } from 'preact/hooks';
import { apiJson } from '../api/client';
import type { UsageReport } from '../api/types';
import { LoadError, useLoad } from '../ui/common';

const day = (d: Date) => d.toISOString().slice(0, 10);
const GROUPS = [
  ['day', 'Day'],
  ['bot', 'Bot'],
  ['model', 'Model'],
  ['user', 'User'],
] as const;

const money = (n: number) => `$${n < 1 ? n.toFixed(4) : n.toFixed(2)}`;
const count = (n: number) => n.toLocaleString();

/** A bar chart in SVG: one bar per row, stacked segments, labelled for screen readers. */
function BarChart({ title, rows, series, format }: { title: string; rows: UsageReport['rows']; series: Array<{ key: 'tokens_in' | 'tokens_out' | 'cost_usd'; label: string; className: string }>; format: (n: number) => string }) {
  const totals = rows.map((r) => series.reduce((sum, s) => sum + (r[s.key] ?? 0), 0));
  const max = Math.max(1e-9, ...totals);
  const barH = 22;
  const gap = 8;
  const labelW = 110;
  const width = 420;
  const chartW = width - labelW - 70;
  const height = rows.length * (barH + gap) + 24;
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${title}: ${rows.map((r, i) => `${r.key} ${format(totals[i]!)}`).join(', ')}`}>
        {rows.map((row, i) => {
          let x = labelW;
          const y = i * (barH + gap);
          return (
            <g key={row.key}>
              <text x={labelW - 6} y={y + barH * 0.7} text-anchor="end" class="chart-label">
                {row.key.length > 16 ? `${row.key.slice(0, 15)}…` : row.key}
              </text>
              {series.map((s) => {
                const w = ((row[s.key] ?? 0) / max) * chartW;
                const rect = <rect key={s.key} x={x} y={y} width={Math.max(0, w)} height={barH} class={s.className} />;
                x += w;
                return rect;
              })}
              <text x={x + 4} y={y + barH * 0.7} class="chart-value">
                {format(totals[i]!)}
              </text>
            </g>
          );
        })}
      </svg>
      {series.length > 1 ? (
        <ul class="legend">
          {series.map((s) => (
            <li key={s.key}>
              <span class={`swatch ${s.className}`} aria-hidden="true" /> {s.label}
            </li>
          ))}
        </ul>
      ) : null}
    </figure>
  );
}

/** `#/usage` */
export function UsageView() {
  const today = new Date();
  const [from, setFrom] = useState(day(new Date(today.getTime() - 29 * 86400_000)));
  const [to, setTo] = useState(day(today));
  const [groupBy, setGroupBy] = useState<string>('day');
  const invalid = from > to ? 'The start date must not be after the end date' : undefined;
  const report = useLoad(() => (invalid ? Promise.resolve(undefined) : apiJson<UsageReport>('GET', '/usage', { query: { from, to, group_by: groupBy } })), [from, to, groupBy, invalid]);
  const r = report.data;
  return (
    <section aria-labelledby="usage-title">
      <h1 id="usage-title">Usage</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Usage range">
        <div class="field">
          <label for="usage-from">From</label>
          <input id="usage-from" type="date" value={from} max={to} onChange={(e) => setFrom(e.currentTarget.value)} aria-invalid={invalid ? 'true' : undefined} aria-describedby={invalid ? 'usage-error' : undefined} />
        </div>
        <div class="field">
          <label for="usage-to">To</label>
          <input id="usage-to" type="date" value={to} min={from} onChange={(e) => setTo(e.currentTarget.value)} />
        </div>
        <fieldset class="segmented">
          <legend>Group by</legend>
          {GROUPS.map(([value, label]) => (
            <label key={value}>
              <input type="radio" name="group_by" value={value} checked={groupBy === value} onChange={() => setGroupBy(value)} /> {label}
            </label>
          ))}
        </fieldset>
        {invalid ? (
          <p id="usage-error" class="field-error" role="alert">
            {invalid}
          </p>
        ) : null}
      </form>
      {report.error ? <LoadError error={report.error} retry={report.reload} /> : null}
      {r ? (
        r.rows.length === 0 ? (
          <p class="muted">No usage between {r.from} and {r.to}.</p>
        ) : (
          <div class="usage-layout">
            <div class="charts">
              <BarChart
                title={`Tokens by ${r.group_by}`}
                rows={r.rows}
                format={count}
                series={[
                  { key: 'tokens_in', label: 'tokens in', className: 'bar-a' },
                  { key: 'tokens_out', label: 'tokens out', className: 'bar-b' },
                ]}
              />
              <BarChart title={`Cost by ${r.group_by} (USD)`} rows={r.rows} format={money} series={[{ key: 'cost_usd', label: 'cost', className: 'bar-c' }]} />
            </div>
            <div class="table-wrap">
              <table data-testid="usage-table">
                <caption>
                  Usage by {r.group_by}, {r.from} to {r.to}
                </caption>
                <thead>
                  <tr>
                    <th scope="col">{r.group_by}</th>
                    <th scope="col">Calls</th>
                    <th scope="col">Tokens in</th>
                    <th scope="col">Tokens out</th>
                    <th scope="col">Cost</th>
                  </tr>
                </thead>
                <tbody>
                  {r.rows.map((row) => (
                    <tr key={row.key}>
                      <th scope="row">{row.key}</th>
                      <td>{count(row.calls)}</td>
                      <td>{count(row.tokens_in)}</td>
                      <td>{count(row.tokens_out)}</td>
                      <td>{money(row.cost_usd)}</td>
                    </tr>
                  ))}
                </tbody>
                <tfoot>
                  <tr>
                    <th scope="row">Total</th>
                    <td>{count(r.totals.calls ?? 0)}</td>
                    <td>{count(r.totals.tokens_in ?? 0)}</td>
                    <td>{count(r.totals.tokens_out ?? 0)}</td>
                    <td>{money(r.totals.cost_usd ?? 0)}</td>
                  </tr>
                </tfoot>
              </table>
            </div>
          </div>
        )
      ) : report.loading ? (
        <p class="loading">Loading…</p>
      ) : null}
    </section>
  );
}
