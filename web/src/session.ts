/** Who is using the page and what the running server offers. */
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Me } from './api/types';

export interface Session {
  me: Me;
  /** `METHOD /path/{param}` for every route in the server's /openapi.json. */
  routes: Set<string>;
  /** True when the caller's role may do `what`. */
  can(what: Capability): boolean;
  has(route: string): boolean;
  signOut(): void;
}

/** What the page offers depending on the role. */
export type Capability = 'bots:write' | 'users:manage' | 'usage:read' | 'doctor:read';

/** The local admin, when the server has no /me (loopback without keys). */
export const localAdmin: Me = { user: { id: 'local', username: 'local', role: 'admin' }, permissions: [], auth: 'local' };

/** Derives `can` from `/me`: an admin may do everything, others what their permissions or role say. */
export function capabilities(me: Me): (what: Capability) => boolean {
  const role = me.user.role;
  const granted = new Set(me.permissions ?? []);
  // Without a permission list (a server without /me), the default role table applies.
  const defaults: Record<string, Capability[]> = { builder: ['bots:write', 'usage:read'], viewer: ['usage:read'] };
  return (what) => role === 'admin' || granted.has(what) || (granted.size === 0 && (defaults[role] ?? []).includes(what));
}

export const SessionContext = createContext<Session | null>(null);

/** The session; only inside the signed-in app. */
export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside the app');
  return session;
}
