/**
 * Storage and health: engine and location, migrations, capabilities, mirrors with their lag,
 * degraded mode (spool backlog, where reads come from) and, for admins, `otto doctor`'s findings.
 */
import { apiJson } from '../api/client';
import type { DoctorReport, Health } from '../api/types';
import { useSession } from '../session';
import { LoadError, useLoad, When } from '../ui/common';

function Doctor() {
  const report = useLoad(() => apiJson<DoctorReport>('GET', '/admin/doctor'), []);
  return (
    <div class="card" aria-labelledby="doctor-title">
      <div class="section-head">
        <h2 id="doctor-title">Doctor</h2>
        <button onClick={() => void report.reload()} disabled={report.loading}>
          {report.loading ? 'Checking…' : 'Check again'}
        </button>
      </div>
      {report.error ? <LoadError error={report.error} retry={report.reload} /> : null}
      <ul class="findings" data-testid="doctor-findings">
        {report.data?.findings.map((f, i) => (
          <li key={i} class={`finding finding-${f.status}`}>
            <span class={`status status-${f.status}`}>{f.status}</span> <strong>{f.check}</strong>: {f.message}
            {f.fix ? (
              <p class="fix">
                Fix: <code>{f.fix}</code>
              </p>
            ) : null}
          </li>
        ))}
      </ul>
    </div>
  );
}

/** `#/storage` */
export function StorageView({ health, refresh }: { health: Health | undefined; refresh: () => void }) {
  const session = useSession();
  if (!health) return <p class="loading">Loading…</p>;
  const s = health.storage;
  const m = s?.migrations;
  const d = health.degraded;
  const backlog = d?.spool_backlog ?? health.spool?.backlog;
  return (
    <section aria-labelledby="storage-title">
      <div class="section-head">
        <h1 id="storage-title">Storage &amp; health</h1>
        <button onClick={refresh}>Refresh</button>
      </div>
      <div class="grid">
        <div class="card">
          <h2>Primary store</h2>
          <dl class="facts">
            <dt>Status</dt>
            <dd>
              <span class={`status status-${health.status === 'ok' ? 'ok' : health.status === 'degraded' ? 'warn' : 'fail'}`} data-testid="health-status">
                {health.status}
              </span>
            </dd>
            <dt>Engine</dt>
            <dd data-testid="engine">{s?.engine ?? '—'}</dd>
            <dt>Location</dt>
            <dd>
              <code>{s?.location ?? '—'}</code>
            </dd>
            {s?.server_version ? (
              <>
                <dt>Server version</dt>
                <dd>{s.server_version}</dd>
              </>
            ) : null}
            <dt>Answers in</dt>
            <dd>{s?.ok ? `${s.latency_ms ?? '?'} ms` : (s?.error ?? 'not answering')}</dd>
            <dt>Migrations</dt>
            <dd>
              {m ? `${m.applied ?? 0} of ${m.total ?? 0} applied` : '—'}
              {m?.pending ? <span class="status status-warn"> {m.pending} pending</span> : null}
            </dd>
            <dt>Bots</dt>
            <dd>
              {health.bots?.loaded ?? 0} loaded ({health.bots?.rehydrated ?? 0} rehydrated at start)
            </dd>
            <dt>Otto</dt>
            <dd>
              {health.version ?? ''} · up {health.uptime_s ?? 0} s
            </dd>
          </dl>
          {s?.capabilities ? (
            <>
              <h3>Capabilities</h3>
              <ul class="chips">
                {Object.entries(s.capabilities).map(([name, on]) => (
                  <li key={name} class={on ? 'chip on' : 'chip off'}>
                    {name}: {on ? 'yes' : 'no'}
                  </li>
                ))}
              </ul>
            </>
          ) : null}
        </div>
        <div class="card">
          <h2>Degraded mode</h2>
          {d || backlog !== undefined ? (
            <dl class="facts">
              <dt>Active</dt>
              <dd>
                <span class={`status status-${d?.active ? 'warn' : 'ok'}`}>{d?.active ? 'yes' : 'no'}</span>
              </dd>
              {d?.since ? (
                <>
                  <dt>Since</dt>
                  <dd>
                    <When at={d.since} />
                  </dd>
                </>
              ) : null}
              {d?.reason ? (
                <>
                  <dt>Reason</dt>
                  <dd>{d.reason}</dd>
                </>
              ) : null}
              {d?.reads_from ? (
                <>
                  <dt>Reads from</dt>
                  <dd>
                    <code>{d.reads_from}</code>
                  </dd>
                </>
              ) : null}
              <dt>Spool backlog</dt>
              <dd data-testid="spool-backlog">{backlog ?? 0} writes waiting</dd>
              {d?.conflicts !== undefined ? (
                <>
                  <dt>Replay conflicts</dt>
                  <dd>{d.conflicts}</dd>
                </>
              ) : null}
            </dl>
          ) : (
            <p class="muted">This Otto does not report degraded mode.</p>
          )}
        </div>
      </div>
      <div class="card">
        <h2>Mirrors</h2>
        {health.mirrors?.length ? (
          <div class="table-wrap">
            <table>
              <caption class="visually-hidden">Mirrors and their lag</caption>
              <thead>
                <tr>
                  <th scope="col">Mirror</th>
                  <th scope="col">Status</th>
                  <th scope="col">Seq</th>
                  <th scope="col">Lag (changes)</th>
                  <th scope="col">Behind</th>
                </tr>
              </thead>
              <tbody>
                {health.mirrors.map((mirror) => (
                  <tr key={mirror.url}>
                    <th scope="row">
                      <code>{mirror.url}</code>
                    </th>
                    <td>
                      <span class={`status status-${mirror.status === 'ok' ? 'ok' : mirror.status === 'behind' ? 'warn' : 'fail'}`}>{mirror.status}</span>
                      {mirror.last_error ? <small class="muted"> {mirror.last_error}</small> : null}
                    </td>
                    <td>{mirror.seq ?? 0}</td>
                    <td>{mirror.lag ?? 0}</td>
                    <td>{mirror.seconds_behind ?? 0} s</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <p class="muted">
            No mirrors. Set <code>OTTO_MIRRORS</code> to keep a copy (e.g. <code>jsonl:./backup</code>).
          </p>
        )}
      </div>
      {session.has('GET /admin/doctor') && session.can('users:manage') ? <Doctor /> : null}
    </section>
  );
}
