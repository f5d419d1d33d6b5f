import { loadConfig, withDotEnv } from '../../config.ts';
import { OttoError } from '../../domain/errors.ts';
import { createSecretBox, rotateSecrets, SECRET_KEY_HINT } from '../../secrets/index.ts';
import { attachChangeLog } from '../../storage/changes/index.ts';
import { openStorage } from '../../storage/index.ts';
import { UsageError, type Command } from '../command.ts';

export const secretsCommand: Command = {
  name: 'secrets',
  summary: 're-encrypt every stored secret under the current key (rotate)',
  positionals: true,
  help: `Usage: otto secrets rotate

Re-encrypts every stored secret (provider keys, channel tokens, webhook secrets) that is not
under the current key, i.e. the first one in OTTO_SECRET_KEY. Running Ottos keep working during
the rotation: every key listed in OTTO_SECRET_KEY decrypts.

Rotating to a new key, without downtime:
  1. make a key:            openssl rand -base64 32
  2. list it first, keep the old one after it, and restart every Otto:
                            OTTO_SECRET_KEY=k2:<new key>,k1:<old key>
  3. re-encrypt:            otto secrets rotate
  4. drop the old key from OTTO_SECRET_KEY and restart.

Idempotent: run it again after an interruption. Prints progress per collection and a summary.
Exit code: 0 when every secret is under the current key; 1 when some could not be decrypted
(their key is not listed, or they were altered; each is named) or on failure.`,
  async run({ positionals, io }) {
    if (positionals[0] !== 'rotate' || positionals.length > 1) throw new UsageError('say `otto secrets rotate`');
    const config = loadConfig(withDotEnv(io.env, io.cwd), io.cwd);
    if (!config.secrets.configured) {
      io.err(`otto secrets: OTTO_SECRET_KEY is not set; ${SECRET_KEY_HINT}`);
      return 1;
    }
    const opened = await openStorage({ config, migrate: config.autoMigrate, onProgress: (line) => io.err(line) });
    const logged = await attachChangeLog(opened.store, { recoveryMs: config.changes.recoveryMs });
    try {
      const box = createSecretBox(config.secrets);
      io.err(`rotating secrets to key ${box.currentKeyId} (keys configured: ${config.secrets.ids.join(', ')})`);
      const summary = await rotateSecrets({ store: logged.store, box, onProgress: (line) => io.err(`  ${line}`) });
      io.out(`key ${summary.key_id}: ${summary.scanned} document(s) scanned, ${summary.rotated} secret(s) re-encrypted, ${summary.current} already current, ${summary.failed.length} failed`);
      for (const line of summary.failed) io.err(`  cannot decrypt ${line}`);
      if (summary.failed.length > 0) {
        io.err('Some secrets were left as they were: add their key back to OTTO_SECRET_KEY (after the current one) and run this again.');
        return 1;
      }
      return 0;
    } catch (error) {
      if (error instanceof OttoError) {
        io.err(`otto secrets: ${error.message}`);
        return 1;
      }
      throw error;
    } finally {
      logged.log.close();
      await logged.store.close();
    }
  },
};
