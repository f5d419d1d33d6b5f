/**
 * Declarative forms: each field says how it is entered and validated (mirroring the API's
 * JSON Schemas), errors sit next to their field (aria-invalid + aria-describedby), and a
 * server error naming a field (`error.field`, e.g. `endpoint.url`) lands on that field.
 */
import { useState } from 'preact/hooks';
import type { JSX } from 'preact';
import { ApiError } from '../api/client';

export type FieldKind = 'text' | 'textarea' | 'select' | 'number' | 'checkbox' | 'lines' | 'password' | 'date';

export interface FieldSpec {
  name: string;
  label: string;
  kind?: FieldKind;
  required?: boolean;
  min?: number;
  max?: number;
  /** A RegExp the value must match, with the sentence shown when it does not. */
  pattern?: [RegExp, string];
  options?: Array<[value: string, label: string]>;
  hint?: string;
  /** Server field names that belong to this field (default: `name`), e.g. `endpoint.url`. */
  serverFields?: string[];
  placeholder?: string;
  autoComplete?: string;
}

export type FormValues = Record<string, string | boolean>;

/** Checks one value against its spec; returns the problem in words, or undefined. */
export function validateField(spec: FieldSpec, value: string | boolean): string | undefined {
  if (spec.kind === 'checkbox') return undefined;
  const text = String(value ?? '');
  if (!text.trim()) return spec.required ? `${spec.label} is required` : undefined;
  if (spec.kind === 'number') {
    const n = Number(text);
    if (!Number.isInteger(n)) return `${spec.label} must be a whole number`;
    if (spec.min !== undefined && n < spec.min) return `${spec.label} must be at least ${spec.min}`;
    if (spec.max !== undefined && n > spec.max) return `${spec.label} must be at most ${spec.max}`;
    return undefined;
  }
  if (spec.kind === 'lines') {
    const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
    if (spec.required && lines.length === 0) return `${spec.label} needs at least one line`;
    if (spec.max !== undefined && lines.some((l) => l.length > spec.max!)) return `each line of ${spec.label} must be at most ${spec.max} characters`;
    return undefined;
  }
  if (spec.max !== undefined && text.length > spec.max) return `${spec.label} must be at most ${spec.max} characters (now ${text.length})`;
  if (spec.pattern && !spec.pattern[0].test(text)) return spec.pattern[1];
  return undefined;
}

/** Which field a server error belongs to, if any. */
export function fieldForServerError(fields: FieldSpec[], field: string | undefined): string | undefined {
  if (!field) return undefined;
  const normalized = field.replace(/^\//, '').replaceAll('/', '.');
  for (const spec of fields) {
    for (const name of spec.serverFields ?? [spec.name]) {
      if (normalized === name || normalized.startsWith(`${name}.`)) return spec.name;
    }
  }
  return undefined;
}

let formCounter = 0;

export interface FormProps {
  fields: FieldSpec[];
  initial: FormValues;
  submitLabel: string;
  /** Sends the values; throw ApiError to show the server's answer. Resolve to reset (when `resetOnSuccess`). */
  onSubmit: (values: FormValues) => Promise<void>;
  onCancel?: () => void;
  resetOnSuccess?: boolean;
  /** Handles an error before the form does; return true when handled (e.g. a version conflict). */
  onError?: (error: ApiError) => boolean;
  disabled?: boolean;
  label: string;
  children?: JSX.Element | JSX.Element[] | false | null;
}

/** A validated form: nothing is sent while a field is invalid. */
export function Form(props: FormProps) {
  const [id] = useState(() => `f${++formCounter}`);
  const [values, setValues] = useState<FormValues>(props.initial);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string>();
  const [busy, setBusy] = useState(false);

  const set = (name: string, value: string | boolean) => {
    setValues((v) => ({ ...v, [name]: value }));
    if (errors[name]) setErrors(({ [name]: _gone, ...rest }) => rest);
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    const found: Record<string, string> = {};
    for (const spec of props.fields) {
      const problem = validateField(spec, values[spec.name] ?? '');
      if (problem) found[spec.name] = problem;
    }
    setErrors(found);
    setFormError(undefined);
    const first = props.fields.find((f) => found[f.name]);
    if (first) {
      document.getElementById(`${id}-${first.name}`)?.focus();
      return;
    }
    setBusy(true);
    try {
      await props.onSubmit(values);
      if (props.resetOnSuccess) setValues(props.initial);
    } catch (error) {
      const apiError = error instanceof ApiError ? error : new ApiError(0, 'ERROR', (error as Error).message);
      if (props.onError?.(apiError)) return;
      const field = fieldForServerError(props.fields, apiError.field);
      if (field) {
        setErrors({ [field]: apiError.message });
        document.getElementById(`${id}-${field}`)?.focus();
      } else {
        setFormError(apiError.message);
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="form" onSubmit={submit} aria-label={props.label} noValidate>
      {props.fields.map((spec) => {
        const inputId = `${id}-${spec.name}`;
        const error = errors[spec.name];
        const described = [error ? `${inputId}-error` : '', spec.hint ? `${inputId}-hint` : ''].filter(Boolean).join(' ') || undefined;
        const common = {
          id: inputId,
          name: spec.name,
          'aria-invalid': error ? ('true' as const) : undefined,
          'aria-describedby': described,
          'aria-required': spec.required ? ('true' as const) : undefined,
          disabled: props.disabled || busy,
        };
        const value = values[spec.name];
        let input: JSX.Element;
        switch (spec.kind) {
          case 'textarea':
          case 'lines':
            input = <textarea {...common} rows={spec.kind === 'lines' ? 3 : 2} value={String(value ?? '')} placeholder={spec.placeholder} onInput={(e) => set(spec.name, e.currentTarget.value)} />;
            break;
          case 'select':
            input = (
              <select {...common} value={String(value ?? '')} onChange={(e) => set(spec.name, e.currentTarget.value)}>
                {(spec.options ?? []).map(([v, label]) => (
                  <option key={v} value={v}>
                    {label}
                  </option>
                ))}
              </select>
            );
            break;
          case 'checkbox':
            input = <input {...common} type="checkbox" checked={value === true} onChange={(e) => set(spec.name, e.currentTarget.checked)} />;
            break;
          default:
            input = (
              <input
                {...common}
                type={(spec.kind === 'number' ? 'number' : spec.kind === 'password' ? 'password' : spec.kind === 'date' ? 'date' : 'text') as 'text'}
                inputMode={spec.kind === 'number' ? 'numeric' : undefined}
                value={String(value ?? '')}
                placeholder={spec.placeholder}
                autoComplete={spec.autoComplete ?? 'off'}
                onInput={(e) => set(spec.name, e.currentTarget.value)}
              />
            );
        }
        return (
          <div class={`field field-${spec.kind ?? 'text'}${error ? ' has-error' : ''}`} key={spec.name}>
            <label for={inputId}>
              {spec.label}
              {spec.required ? <span aria-hidden="true"> *</span> : null}
            </label>
            {input}
            {spec.hint ? (
              <small class="hint" id={`${inputId}-hint`}>
                {spec.hint}
              </small>
            ) : null}
            {error ? (
              <small class="field-error" id={`${inputId}-error`} role="alert">
                {error}
              </small>
            ) : null}
          </div>
        );
      })}
      {formError ? (
        <p class="form-error" role="alert">
          {formError}
        </p>
      ) : null}
      {props.children}
      <div class="actions">
        <button type="submit" class="primary" disabled={props.disabled || busy}>
          {busy ? 'Saving…' : props.submitLabel}
        </button>
        {props.onCancel ? (
          <button type="button" onClick={props.onCancel} disabled={busy}>
            Cancel
          </button>
        ) : null}
      </div>
    </form>
  );
}

/** Splits a textarea into trimmed, non-empty lines. */
export const lines = (value: string | boolean | undefined) =>
  String(value ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);

/** A value for an optional text field: undefined when empty. */
export const optional = (value: string | boolean | undefined) => (String(value ?? '').trim() ? String(value).trim() : undefined);
