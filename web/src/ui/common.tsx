/** Small shared pieces: loading/error states, dates, confirmations. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api/client';

/** Loads data with `load` whenever `deps` change; `reload()` loads again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data: T | undefined; error: ApiError | undefined; loading: boolean; reload: () => Promise<void>; set: (t: T) => void } {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<ApiError>();
  const [loading, setLoading] = useState(true);
  const generation = useRef(0);
  const reload = useCallback(async () => {
    const mine = ++generation.current;
    setLoading(true);
    try {
      const value = await load();
      if (mine === generation.current) {
        setData(value);
        setError(undefined);
      }
    } catch (e) {
      if (mine === generation.current) setError(e instanceof ApiError ? e : new ApiError(0, 'ERROR', (e as Error).message));
    } finally {
      if (mine === generation.current) setLoading(false);
    }
  }, deps);
  useEffect(() => {
    void reload();
  }, [reload]);
  return { data, error, loading, reload, set: setData };
}

/** A failed load, in words, with a retry button. */
export function LoadError({ error, retry }: { error: ApiError; retry?: () => void }) {
  return (
    <div class="notice notice-fail" role="alert">
      <span>{error.message}</span> {retry ? <button onClick={retry}>Retry</button> : null}
    </div>
  );
}

/** A date-time for people, with the exact value as a tooltip. */
export function When({ at }: { at: string | null | undefined }) {
  if (!at) return <span>—</span>;
  const date = new Date(at);
  return (
    <time dateTime={at} title={date.toISOString()}>
      {date.toLocaleString()}
    </time>
  );
}

/** A button that asks "are you sure?" in place (no window dialogs) before running `action`. */
export function ConfirmButton({ label, confirmLabel, question, action, disabled }: { label: string; confirmLabel?: string; question: string; action: () => Promise<void>; disabled?: boolean }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const confirmRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (asking) confirmRef.current?.focus();
  }, [asking]);
  if (!asking)
    return (
      <button class="danger" disabled={disabled} onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  return (
    <span class="confirm" role="group" aria-label={question}>
      <span>{question}</span>
      <button
        ref={confirmRef}
        class="danger"
        disabled={busy}
        onClick={async () => {
          setBusy(true);
          setError(undefined);
          try {
            await action();
            setAsking(false);
          } catch (e) {
            setError((e as Error).message);
          } finally {
            setBusy(false);
          }
        }}
      >
        {confirmLabel ?? label}
      </button>
      <button onClick={() => setAsking(false)} disabled={busy}>
        Cancel
      </button>
      {error ? (
        <span class="field-error" role="alert">
          {error}
        </span>
      ) : null}
    </span>
  );
}
