/**
 * The page's shell: finds out who is calling (asking for an API key when the server wants
 * one), which routes the server has, polls /health for the degraded banner, and shows the
 * view of the current hash route.
 */
import { useCallback, useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, apiJson, apiKey, degradedHeader, forgetRoutes, serverRoutes, setApiKey, unauthorized } from './api/client';
import type { Health, Me } from './api/types';
import { href, useRoute } from './router';
import { capabilities, localAdmin, SessionContext, type Session } from './session';
import { Form } from './ui/form';
import { BotsView } from './views/bots';
import { ChatView } from './views/chat';
import { StorageView } from './views/storage';
import { UsageView } from './views/usage';
import { UsersView } from './views/users';

type Boot = { state: 'loading' } | { state: 'key'; message?: string } | { state: 'error'; message: string } | { state: 'ready'; me: Me };

/** Subscribes a component to one of the client's observables. */
function useObservable<T>(o: { get(): T; subscribe(l: () => void): () => void }): T {
  const [value, setValue] = useState(o.get());
  useEffect(() => o.subscribe(() => setValue(o.get())), [o]);
  return value;
}

/** Polls /health (every 5 s, and when the tab comes back); undefined until the first answer. */
export function useHealth(): { health: Health | undefined; refresh: () => void } {
  const [health, setHealth] = useState<Health>();
  const refresh = useCallback(() => {
    // /health answers 503 while storage is down, still with its report.
    fetch('/health', { headers: { accept: 'application/json' } })
      .then(async (r) => {
        degradedHeader.set(r.headers.has('otto-degraded'));
        return (await r.json()) as Health;
      })
      .then(setHealth, () => setHealth({ status: 'unreachable' }));
  }, []);
  useEffect(() => {
    refresh();
    const timer = setInterval(refresh, 5000);
    const onVisible = () => document.visibilityState === 'visible' && refresh();
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      clearInterval(timer);
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, [refresh]);
  return { health, refresh };
}

/** The degraded (or down) banner, from /health and the Otto-Degraded header. */
function StatusBanner({ health }: { health: Health | undefined }) {
  const header = useObservable(degradedHeader);
  const degraded = health?.status === 'degraded' || health?.degraded?.active === true || header;
  if (health?.status === 'unreachable') {
    return (
      <div class="banner banner-fail" role="alert">
        Otto is not answering. The page will reconnect by itself when it is back.
      </div>
    );
  }
  if (degraded) {
    const d = health?.degraded;
    return (
      <div class="banner banner-warn" role="alert" data-testid="degraded-banner">
        <strong>Otto is running degraded</strong>
        {d?.since ? ` since ${new Date(d.since).toLocaleTimeString()}` : ''}
        {d?.reason ? `: ${d.reason}.` : '.'} {d?.reads_from ? `Reads come from ${d.reads_from}. ` : ''}
        {`Writes are kept in the spool (${d?.spool_backlog ?? 0} waiting) and replayed when the primary store returns; nothing acknowledged is lost. `}
        <a href={href('storage')}>Storage details</a>
      </div>
    );
  }
  if (health?.status === 'down') {
    return (
      <div class="banner banner-fail" role="alert" data-testid="down-banner">
        <strong>The primary store is not answering.</strong> {health.storage?.engine ? `(${health.storage.engine}) ` : ''}
        <a href={href('storage')}>Storage details</a>
      </div>
    );
  }
  return null;
}

function KeyPrompt({ message, onKey }: { message?: string; onKey: (key: string) => Promise<void> }) {
  return (
    <main id="main" class="narrow">
      <h1>Sign in to Otto</h1>
      <p>This Otto needs an API key. It is kept only for this browser tab's session and forgotten when you close it.</p>
      {message ? (
        <p class="form-error" role="alert">
          {message}
        </p>
      ) : null}
      <Form
        label="Sign in"
        fields={[{ name: 'key', label: 'API key', kind: 'password', required: true, autoComplete: 'current-password', hint: 'Ask your Otto admin, or run `otto keys create`.' }]}
        initial={{ key: '' }}
        submitLabel="Sign in"
        onSubmit={async (values) => onKey(String(values.key).trim())}
      />
    </main>
  );
}

const NAV: Array<{ route: string; label: string; show: (s: Session) => boolean }> = [
  { route: 'chat', label: 'Chat', show: () => true },
  { route: 'bots', label: 'Bots', show: () => true },
  { route: 'storage', label: 'Storage & health', show: () => true },
  { route: 'usage', label: 'Usage', show: (s) => s.has('GET /usage') && s.can('usage:read') },
  { route: 'users', label: 'Users & keys', show: (s) => s.has('GET /users') && s.can('users:manage') },
];

/** The whole page. */
export function App() {
  const [boot, setBoot] = useState<Boot>({ state: 'loading' });
  const denied = useObservable(unauthorized);
  const route = useRoute();
  const { health, refresh: refreshHealth } = useHealth();

  const [routes, setRoutes] = useState<Set<string>>(() => new Set());
  const start = useCallback(async () => {
    try {
      forgetRoutes();
      // Who is calling decides what to show first; the route list (a larger document) follows
      // and lights up the views whose routes this server has.
      const me = await apiJson<Me>('GET', '/me').catch((error: unknown) => {
        if (!(error instanceof ApiError) || error.status !== 404) throw error;
        return apiKey() ? { ...localAdmin, user: { ...localAdmin.user, id: 'key', username: 'API key', role: 'builder' }, auth: 'key' } : localAdmin;
      });
      setBoot({ state: 'ready', me });
      serverRoutes().then(setRoutes, () => setRoutes(new Set()));
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        const hadKey = apiKey() !== null;
        setApiKey(null);
        setBoot({ state: 'key', message: hadKey ? 'That key was not accepted; it may have been revoked or expired.' : undefined });
      } else setBoot({ state: 'error', message: (error as Error).message });
    }
  }, []);

  useEffect(() => void start(), [start]);
  // A 401 later (key revoked mid-session) sends the user back to the key prompt.
  useEffect(() => {
    if (denied > 0 && boot.state === 'ready') void start();
  }, [denied]);

  const session = useMemo<Session | null>(() => {
    if (boot.state !== 'ready') return null;
    return {
      me: boot.me,
      routes,
      can: capabilities(boot.me),
      has: (r) => routes.has(r),
      signOut: () => {
        setApiKey(null);
        void start();
      },
    };
  }, [boot, routes, start]);

  useEffect(() => {
    const name = NAV.find((n) => n.route === (route[0] ?? 'chat'))?.label ?? 'Otto';
    document.title = `${name} · Otto`;
  }, [route[0]]);

  if (boot.state === 'loading') return <p class="loading" aria-live="polite">Loading Otto…</p>;
  if (boot.state === 'error')
    return (
      <main id="main" class="narrow">
        <h1>Otto</h1>
        <p role="alert">{boot.message}</p>
        <button onClick={() => void start()}>Try again</button>
      </main>
    );
  if (boot.state === 'key' || !session)
    return (
      <>
        <StatusBanner health={health} />
        <KeyPrompt
          message={boot.state === 'key' ? boot.message : undefined}
          onKey={async (key) => {
            setApiKey(key);
            await start();
          }}
        />
      </>
    );

  const view = route[0] ?? 'chat';
  const items = NAV.filter((n) => n.show(session));
  const current = items.some((n) => n.route === view) ? view : 'chat';
  return (
    <SessionContext.Provider value={session}>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={href('chat')}>
          Otto
        </a>
        <nav aria-label="Main">
          <ul>
            {items.map((n) => (
              <li key={n.route}>
                <a href={href(n.route)} aria-current={current === n.route ? 'page' : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span title={`signed in via ${session.me.auth}`}>
            {session.me.user.display_name || session.me.user.username} <span class="tag">{session.me.user.role}</span>
          </span>
          {apiKey() ? (
            <button class="link" onClick={session.signOut}>
              Sign out
            </button>
          ) : null}
        </div>
      </header>
      <StatusBanner health={health} />
      <main id="main" tabIndex={-1}>
        {current === 'chat' ? <ChatView route={route.slice(1)} /> : null}
        {current === 'bots' ? <BotsView route={route.slice(1)} /> : null}
        {current === 'storage' ? <StorageView health={health} refresh={refreshHealth} /> : null}
        {current === 'usage' ? <UsageView /> : null}
        {current === 'users' ? <UsersView /> : null}
      </main>
    </SessionContext.Provider>
  );
}
