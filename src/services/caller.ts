/** Who is calling: the owner their writes belong to, and whether they may see everyone's. */
export interface Caller {
  owner_id: string;
  admin: boolean;
}

/** The caller used on loopback when no keys are configured. */
export const localAdmin: Caller = { owner_id: 'local', admin: true };

/** True when the caller may see or change a document owned by `owner_id`. */
export function canAccess(caller: Caller, owner_id: string): boolean {
  return caller.admin || caller.owner_id === owner_id;
}
