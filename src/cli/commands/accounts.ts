import { loadConfig, withDotEnv, type OttoConfig } from '../../config.ts';
import { OttoError } from '../../domain/errors.ts';
import { isRole, roles, type Role } from '../../domain/permissions.ts';
import { AccountService, localAdmin, purgeOwner, reassignOwner, type KeyView } from '../../services/index.ts';
import { attachChangeLog } from '../../storage/changes/index.ts';
import { openStorage, type Store } from '../../storage/index.ts';
import { UsageError, type CliIO, type Command } from '../command.ts';

/**
 * Opens the configured store for an account command: applies pending migrations (unless
 * OTTO_AUTO_MIGRATE=false) and logs every write in the change log, like `otto serve`, so
 * mirrors and running Otto processes see the change. Runs `fn`, then closes the store.
 */
async function withAccountStore<T>(config: OttoConfig, io: CliIO, fn: (store: Store) => Promise<T>): Promise<T> {
  const opened = await openStorage({ config, migrate: config.autoMigrate, onProgress: (line) => io.err(line) });
  let store: Store = opened.store;
  try {
    store = (await attachChangeLog(opened.store, { recoveryMs: config.changes.recoveryMs })).store;
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Runs `fn` with the account service on the configured store; prints OttoErrors as one line (exit 1). */
async function withAccounts(io: CliIO, name: string, fn: (accounts: AccountService, store: Store) => Promise<number>): Promise<number> {
  const config = loadConfig(withDotEnv(io.env, io.cwd), io.cwd);
  try {
    return await withAccountStore(config, io, async (store) => fn(await AccountService.open({ store, configured: [], allowLocal: false }), store));
  } catch (error) {
    if (error instanceof OttoError) {
      io.err(`otto ${name}: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

/** `30d`, `12h`, `90m` or `never` → days (fractional), or null for never. Throws UsageError. */
export function parseExpiresIn(text: string): number | null {
  if (text === 'never') return null;
  const match = /^(\d{1,6})([dhm])$/.exec(text);
  if (!match) throw new UsageError('--expires-in takes a number and a unit: 30d, 12h, 90m (or never)');
  const n = Number(match[1]);
  if (n <= 0) throw new UsageError('--expires-in must be more than zero');
  return match[2] === 'd' ? n : match[2] === 'h' ? n / 24 : n / 1440;
}

function printKey(io: CliIO, key: KeyView, secret: string): void {
  io.out(`key ${key.id} (${key.prefix}, "${key.name}")${key.expires_at ? `, expires ${key.expires_at}` : ', never expires'}`);
  io.out('');
  io.out(`  ${secret}`);
  io.out('');
  io.err('This is the only time the key is shown: store it now. Send it as `Authorization: Bearer <key>`.');
}

function keyLine(key: KeyView, username?: string): string {
  const state = key.revoked_at ? `revoked ${key.revoked_at}` : key.expires_at && Date.parse(key.expires_at) <= Date.now() ? `expired ${key.expires_at}` : 'active';
  return `${key.id}  ${key.prefix}  ${(username ?? key.user_id ?? '').padEnd(16)}  ${key.name.padEnd(20)}  ${state.padEnd(32)}  last used ${key.last_used_at ?? 'never'}`;
}

async function createKeyFor(accounts: AccountService, userId: string, values: Record<string, string | boolean | undefined>) {
  const expiresIn = typeof values['expires-in'] === 'string' ? parseExpiresIn(values['expires-in']) : null;
  const expires_at = expiresIn === null ? null : new Date(Date.now() + expiresIn * 86_400_000).toISOString();
  return accounts.createKey({ user_id: userId, input: { ...(typeof values.name === 'string' ? { name: values.name } : {}), expires_at } });
}

export const usersCommand: Command = {
  name: 'users',
  summary: 'create and list users (create prints their first access key once)',
  positionals: true,
  options: {
    username: { type: 'string' },
    email: { type: 'string' },
    'display-name': { type: 'string' },
    role: { type: 'string' },
    admin: { type: 'boolean' },
    name: { type: 'string' },
    'expires-in': { type: 'string' },
    'adopt-local': { type: 'boolean' },
  },
  help: `Usage: otto users create --username <name> [--email <e>] [--display-name <d>] [--admin | --role <role>] [--expires-in 30d] [--adopt-local]
       otto users list

  create   add a user and print their first access key (shown once; store it)
  list     every user with role, email and whether they are disabled

--adopt-local gives the new user everything made before any user existed (by the local admin,
owner \`local\`), so their bots and conversations stay theirs once keys are required.

Roles: ${roles.join(', ')} (default builder; --admin is --role admin). What each may do is in the
README and GET /role-permissions; an admin changes it with PUT /role-permissions/<role>.
Once a user exists, every request needs an access key (loopback included). Beyond loopback
(OTTO_HOST=0.0.0.0) \`otto serve\` starts only once an admin has a key: \`otto users create --admin\`.

Uses the configured store (OTTO_STORAGE, OTTO_DATA_DIR, MONGODB_URI, …); running Otto processes
pick the change up on their next request.

Examples:
  otto users create --username ada --admin
  otto users create --username bob --email bob@example.com --role viewer --expires-in 90d
  otto users list`,
  async run({ values, positionals, io }) {
    const action = positionals[0];
    if (action !== 'create' && action !== 'list') throw new UsageError('say `create` or `list`');
    if (positionals.length > 1) throw new UsageError(`unexpected argument ${positionals[1]}`);
    if (action === 'create') {
      if (typeof values.username !== 'string') throw new UsageError('--username is required');
      if (values.admin && values.role !== undefined && values.role !== 'admin') throw new UsageError('--admin and --role disagree');
      const role = values.admin ? 'admin' : (values.role ?? 'builder');
      if (!isRole(role)) throw new UsageError(`--role must be one of ${roles.join(', ')}`);
      if (typeof values['expires-in'] === 'string') parseExpiresIn(values['expires-in']);
      return withAccounts(io, 'users create', async (accounts, store) => {
        const user = await accounts.createUser({
          input: { username: values.username as string, role: role as Role, ...(typeof values.email === 'string' ? { email: values.email } : {}), ...(typeof values['display-name'] === 'string' ? { display_name: values['display-name'] } : {}) },
        });
        io.out(`created user ${user.username} (${user.id}), role ${user.role}`);
        if (values['adopt-local']) {
          const moved = await reassignOwner({ store, from: localAdmin.owner_id, to: user.id, onProgress: (line) => io.err(`  ${line}`) });
          const total = Object.values(moved).reduce((a, b) => a + b, 0);
          io.out(`adopted ${total} document(s) the local admin had made${total ? ` (${Object.entries(moved).map(([n, c]) => `${n} ${c}`).join(', ')})` : ''}`);
        }
        const made = await createKeyFor(accounts, user.id, { name: values.name ?? 'first key', 'expires-in': values['expires-in'] });
        printKey(io, made.key, made.secret);
        return 0;
      });
    }
    return withAccounts(io, 'users list', async (accounts) => {
      let after: string | null = null;
      let n = 0;
      do {
        const page = await accounts.listUsers({ after, limit: 500 });
        for (const u of page.items) {
          io.out(`${u.id}  ${u.username.padEnd(20)}  ${u.role.padEnd(8)}  ${(u.email ?? '-').padEnd(30)}  ${u.disabled ? 'disabled' : 'enabled'}  created ${u.created_at}`);
          n++;
        }
        after = page.next;
      } while (after);
      io.err(`${n} user(s)`);
      return 0;
    });
  },
};

export const keysCommand: Command = {
  name: 'keys',
  summary: 'create, list and revoke access keys',
  positionals: true,
  options: { user: { type: 'string' }, name: { type: 'string' }, 'expires-in': { type: 'string' } },
  help: `Usage: otto keys create --user <username|id> [--name <label>] [--expires-in 30d]
       otto keys list [--user <username|id>]
       otto keys revoke <key id | otto_prefix>

  create   make an access key for a user and print it (shown once; store it)
  list     keys with prefix, owner, state (active / revoked / expired) and last use
  revoke   refuse a key from the next request on, in every Otto process on this store

--expires-in takes 30d, 12h, 90m or never (default never).
Keys look like otto_<prefix>_<secret>; only their sha256 hash and prefix are stored.

Examples:
  otto keys create --user ada --name laptop --expires-in 30d
  otto keys list --user ada
  otto keys revoke otto_4k2m9x0abc`,
  async run({ values, positionals, io }) {
    const action = positionals[0];
    if (action !== 'create' && action !== 'list' && action !== 'revoke') throw new UsageError('say `create`, `list` or `revoke`');
    if (action === 'revoke') {
      const ref = positionals[1];
      if (!ref || positionals.length > 2) throw new UsageError('give one key id or prefix: otto keys revoke <id|otto_prefix>');
      return withAccounts(io, 'keys revoke', async (accounts) => {
        const key = await accounts.revokeKey({ ref });
        io.out(`revoked ${key.id} (${key.prefix}) at ${key.revoked_at}`);
        return 0;
      });
    }
    if (positionals.length > 1) throw new UsageError(`unexpected argument ${positionals[1]}`);
    if (action === 'create') {
      if (typeof values.user !== 'string') throw new UsageError('--user is required');
      if (typeof values['expires-in'] === 'string') parseExpiresIn(values['expires-in']);
      return withAccounts(io, 'keys create', async (accounts) => {
        const user = await accounts.findUser({ ref: values.user as string });
        const made = await createKeyFor(accounts, user.id, values);
        io.out(`for user ${user.username} (${user.id})`);
        printKey(io, made.key, made.secret);
        return 0;
      });
    }
    return withAccounts(io, 'keys list', async (accounts) => {
      const user = typeof values.user === 'string' ? await accounts.findUser({ ref: values.user }) : undefined;
      const names = new Map<string, string>();
      let after: string | null = null;
      let n = 0;
      do {
        const page = await accounts.listKeys({ user_id: user?.id, after, limit: 500 });
        for (const key of page.items) {
          if (key.user_id && !names.has(key.user_id)) names.set(key.user_id, (await accounts.getUser({ id: key.user_id }).catch(() => null))?.username ?? key.user_id);
          io.out(keyLine(key, key.user_id ? names.get(key.user_id) : undefined));
          n++;
        }
        after = page.next;
      } while (after);
      io.err(`${n} key(s)`);
      return 0;
    });
  },
};

export const purgeCommand: Command = {
  name: 'purge',
  summary: 'delete a user and everything they own (bots, conversations, messages, keys, …)',
  options: { user: { type: 'string' }, 'keep-user': { type: 'boolean' }, 'batch-size': { type: 'string' } },
  help: `Usage: otto purge --user <username|id> [--keep-user] [--batch-size n]

Deletes everything the user owns, in batches with progress: their bots with guidelines,
journeys, tools and tool mappings, their conversations and messages, their access keys, and
every other collection's documents they own (secrets, channels, usage, …); then the user
(unless --keep-user). Running Otto processes stop serving the bots and keys at once.
There is no undo: make a backup first (\`otto export --to jsonl:./backup\`).
Interrupted? Run it again: it continues where it stopped.

Prints a summary per collection. Exit code 0 when done, 1 when the user does not exist.`,
  async run({ values, io }) {
    if (typeof values.user !== 'string') throw new UsageError('--user is required');
    const batchText = typeof values['batch-size'] === 'string' ? values['batch-size'] : '500';
    const batchSize = Number(batchText);
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 1000) throw new UsageError('--batch-size must be a whole number from 1 to 1000');
    return withAccounts(io, 'purge', async (accounts, store) => {
      const user = await accounts.findUser({ ref: values.user as string });
      io.err(`purging everything ${user.username} (${user.id}) owns…`);
      const summary = await purgeOwner({ store, owner_id: user.id, deleteUser: !values['keep-user'], batchSize, onProgress: (line) => io.err(`  ${line}`) });
      for (const [name, n] of Object.entries(summary.deleted)) io.out(`${name.padEnd(24)} ${n} deleted`);
      io.out(`total ${summary.total} document(s) deleted; user ${summary.user_deleted ? 'deleted' : 'kept'}`);
      return 0;
    });
  },
};
