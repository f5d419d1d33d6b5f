import { collections } from '../domain/collections.ts';
import { OttoError } from '../domain/errors.ts';
import { isStorageError, type CollectionSpec, type Doc, type Store } from '../storage/index.ts';
import { isEncryptedSecret, type SecretBox } from './secret-box.ts';

/** Collections holding encrypted secrets (as top-level fields), in the order rotation walks them. */
export const SECRET_COLLECTIONS: CollectionSpec[] = [collections.user_api_keys, collections.global_api_keys, collections.bot_platform_accounts, collections.bot_webhook_configs];

/** What a rotation did. */
export interface RotationSummary {
  /** The key every secret is now encrypted with. */
  key_id: string;
  /** Documents read. */
  scanned: number;
  /** Secrets re-encrypted under the current key. */
  rotated: number;
  /** Secrets already under the current key. */
  current: number;
  /** Secrets that could not be decrypted (their key is not configured, or they are altered), as `collection/id.field: reason`. */
  failed: string[];
}

const RETRIES = 5;

/**
 * Re-encrypts every stored secret that is not under the current key, document by document,
 * each with an optimistic version check (a document changed meanwhile is read again), so
 * running Ottos keep working throughout: every configured key decrypts until the last secret
 * is rotated. Idempotent: run it again after an interruption. Reports progress per 100 documents
 * through `onProgress`. Throws SECRETS_DISABLED without keys, StorageError; an undecryptable
 * secret is listed in `failed` (and left as it is) rather than stopping the run.
 */
export async function rotateSecrets(args: { store: Store; box: SecretBox; onProgress?: (line: string) => void }): Promise<RotationSummary> {
  const { store, box } = args;
  const keyId = box.currentKeyId;
  if (!keyId) box.encrypt(''); // throws SECRETS_DISABLED with how to create a key
  const summary: RotationSummary = { key_id: keyId!, scanned: 0, rotated: 0, current: 0, failed: [] };
  for (const spec of SECRET_COLLECTIONS) {
    const collection = await store.collection<Doc>(spec);
    const total = await collection.count();
    let done = 0;
    for await (const batch of collection.scan({ batchSize: 100 })) {
      for (const first of batch) {
        let doc: Doc | null = first;
        for (let attempt = 0; doc; attempt++) {
          const patch: Record<string, unknown> = {};
          let current = 0;
          for (const [field, value] of Object.entries(doc)) {
            if (!isEncryptedSecret(value)) continue;
            if (!box.needsRotation(value)) {
              current++;
              continue;
            }
            try {
              patch[field] = box.encrypt(box.decrypt(value));
            } catch (error) {
              if (!(error instanceof OttoError)) throw error;
              summary.failed.push(`${spec.name}/${doc.id}.${field}: ${error.message}`);
            }
          }
          if (Object.keys(patch).length === 0) {
            summary.current += current;
            break;
          }
          try {
            await collection.update({ id: doc.id, patch: patch as never, expectVersion: doc.version });
            summary.rotated += Object.keys(patch).length;
            summary.current += current;
            break;
          } catch (error) {
            if (!isStorageError(error, 'CONFLICT') && !isStorageError(error, 'NOT_FOUND')) throw error;
            if (attempt >= RETRIES) throw error;
            doc = await collection.get({ id: doc.id });
          }
        }
        summary.scanned++;
        done++;
      }
      args.onProgress?.(`${spec.name}: ${done}/${total}`);
    }
  }
  return summary;
}
