/** Users and access keys (admins): create users, create a key (its secret shown once), revoke keys. */
import { useState } from 'preact/hooks';
import { apiJson } from '../api/client';
import type { ApiKey, User } from '../api/types';
import { useSession } from '../session';
import { ConfirmButton, LoadError, useLoad, When } from '../ui/common';
import { Form, optional } from '../ui/form';

type List<T> = T[] | { items: T[] };
const items = <T,>(list: List<T> | undefined): T[] => (Array.isArray(list) ? list : (list?.items ?? []));

function NewSecret({ secret, onDone }: { secret: string; onDone: () => void }) {
  const [copied, setCopied] = useState(false);
  return (
    <div class="notice notice-ok secret" role="status" data-testid="new-secret">
      <p>
        <strong>Copy this key now: it is shown only once.</strong> Otto keeps only its hash.
      </p>
      <p>
        <code class="secret-value">{secret}</code>
      </p>
      <div class="actions">
        <button
          onClick={async () => {
            await navigator.clipboard?.writeText(secret).then(
              () => setCopied(true),
              () => setCopied(false),
            );
          }}
        >
          {copied ? 'Copied' : 'Copy'}
        </button>
        <button onClick={onDone}>I have saved it</button>
      </div>
    </div>
  );
}

function UserKeys({ user }: { user: User }) {
  const keys = useLoad(async () => items(await apiJson<List<ApiKey>>('GET', `/users/${encodeURIComponent(user.id)}/keys`)), [user.id]);
  const [secret, setSecret] = useState<string>();
  return (
    <div class="keys">
      <h3>Keys of {user.username}</h3>
      {keys.error ? <LoadError error={keys.error} retry={keys.reload} /> : null}
      {secret ? <NewSecret secret={secret} onDone={() => setSecret(undefined)} /> : null}
      <ul class="items">
        {keys.data?.map((k) => (
          <li key={k.id} class="item">
            <p>
              <code>{k.prefix}…</code> {k.name} {k.revoked_at ? <span class="status status-fail">revoked</span> : <span class="status status-ok">active</span>}
            </p>
            <p class="small muted">
              created <When at={k.created_at} /> · last used <When at={k.last_used_at} /> · expires <When at={k.expires_at} />
            </p>
            {k.revoked_at ? null : (
              <ConfirmButton
                label="Revoke"
                question={`Revoke the key ${k.name}? It stops working at once.`}
                action={async () => {
                  await apiJson('DELETE', `/users/${encodeURIComponent(user.id)}/keys/${encodeURIComponent(k.id)}`);
                  await keys.reload();
                }}
              />
            )}
          </li>
        ))}
      </ul>
      <Form
        label={`New key for ${user.username}`}
        fields={[
          { name: 'name', label: 'Key name', required: true, max: 100, placeholder: 'laptop' },
          { name: 'expires_at', label: 'Expires on (optional)', kind: 'date' },
        ]}
        initial={{ name: '', expires_at: '' }}
        submitLabel="Create key"
        resetOnSuccess
        onSubmit={async (v) => {
          const expires = optional(v.expires_at);
          const created = await apiJson<{ key: ApiKey; secret: string }>('POST', `/users/${encodeURIComponent(user.id)}/keys`, {
            body: { name: String(v.name).trim(), ...(expires ? { expires_at: new Date(`${expires}T23:59:59Z`).toISOString() } : {}) },
          });
          setSecret(created.secret);
          await keys.reload();
        }}
      />
    </div>
  );
}

/** `#/users` */
export function UsersView() {
  const session = useSession();
  const users = useLoad(async () => items(await apiJson<List<User>>('GET', '/users')), []);
  const [open, setOpen] = useState<string>();
  const [creating, setCreating] = useState(false);
  return (
    <section aria-labelledby="users-title">
      <div class="section-head">
        <h1 id="users-title">Users &amp; keys</h1>
        {!creating ? (
          <button class="primary" onClick={() => setCreating(true)}>
            New user
          </button>
        ) : null}
      </div>
      {creating ? (
        <div class="card">
          {session.me.auth === 'local' ? (
            <p class="notice notice-warn">Once a user exists, Otto asks everyone for a key, this page too. Create an admin user first and a key for yourself, and keep it.</p>
          ) : null}
          <Form
            label="New user"
            fields={[
              { name: 'username', label: 'Username', required: true, pattern: [/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'Username: a letter or digit, then letters, digits, _ . or - (at most 64)'] },
              { name: 'email', label: 'Email', max: 320, pattern: [/^[^\s@]+@[^\s@]+$/, 'Email must look like name@example.com'] },
              { name: 'display_name', label: 'Display name', max: 200 },
              {
                name: 'role',
                label: 'Role',
                kind: 'select',
                options: [
                  ['builder', 'builder: builds and uses bots'],
                  ['viewer', 'viewer: reads and chats'],
                  ['admin', 'admin: everything'],
                ],
              },
            ]}
            initial={{ username: '', email: '', display_name: '', role: 'builder' }}
            submitLabel="Create user"
            onCancel={() => setCreating(false)}
            onSubmit={async (v) => {
              const body = { username: String(v.username).trim(), role: String(v.role), ...(optional(v.email) ? { email: optional(v.email) } : {}), ...(optional(v.display_name) ? { display_name: optional(v.display_name) } : {}) };
              const created = await apiJson<User | { user: User }>('POST', '/users', { body });
              setCreating(false);
              await users.reload();
              setOpen('user' in created ? created.user.id : created.id);
            }}
          />
        </div>
      ) : null}
      {users.error ? <LoadError error={users.error} retry={users.reload} /> : null}
      <ul class="cards">
        {users.data?.map((u) => (
          <li key={u.id} class="card">
            <p>
              <strong>{u.display_name || u.username}</strong> <span class="tag">{u.role}</span> {u.disabled ? <span class="status status-fail">disabled</span> : null}
            </p>
            <p class="small muted">
              {u.username}
              {u.email ? ` · ${u.email}` : ''}
            </p>
            <button aria-expanded={open === u.id} onClick={() => setOpen(open === u.id ? undefined : u.id)}>
              {open === u.id ? 'Hide keys' : 'Keys'}
            </button>
            {open === u.id ? <UserKeys user={u} /> : null}
          </li>
        ))}
      </ul>
    </section>
  );
}
