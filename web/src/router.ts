/** Hash routes (`#/chat/<bot>/<conversation>`), so the server serves one page at `/`. */
import { useEffect, useState } from 'preact/hooks';

/** The current hash route as path segments, e.g. `['chat', 'otto']`. */
export function useRoute(): string[] {
  const [hash, setHash] = useState(() => location.hash);
  useEffect(() => {
    const onChange = () => setHash(location.hash);
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return hash
    .replace(/^#\/?/, '')
    .split('/')
    .filter(Boolean)
    .map((s) => decodeURIComponent(s));
}

/** A link target for route segments. */
export const href = (...segments: string[]) => `#/${segments.map(encodeURIComponent).join('/')}`;

/** Goes to a route; `replace` keeps history clean (no extra back step). */
export function navigate(target: string, replace = false): void {
  if (replace) history.replaceState(null, '', target);
  else history.pushState(null, '', target);
  dispatchEvent(new HashChangeEvent('hashchange'));
}
