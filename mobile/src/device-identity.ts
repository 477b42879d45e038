/**
 * Which checkpoints and device id go with which local database (docs/mobile.md, "Which
 * checkpoints go with which database"). The cursors say "this database holds everything up to
 * here", and the device id says "rows pushed under this id are already here": both are true only
 * of the database they were written for, on the install that wrote them. So they are bound to the
 * database's instance id (kept inside the database) and, when a key store is given, to this
 * install (a marker kept in the key store, which device backups do not restore). Checkpoints
 * written for another database, or restored onto another install, are dropped: a new device id,
 * empty cursors, no push attempts; the next sync is a first sync, which pulls everything.
 */
import { TABLES } from '../../src/domain';
import type { LocalMigrationResult } from './local-schema';
import type { CheckpointStore, KeyStore } from './ports';

/** Push attempt slots a table may hold (the engine keeps up to PUSHES_IN_FLIGHT; the store takes 16). */
const SLOTS = 16;

/** The key store entry marking that this install runs database `instanceId`, as device `deviceId`. */
export const installMarkerName = (instanceId: string): string => `note-sync.install.${instanceId}`;

/** Forgets everything `store` keeps: cursors, push attempts, device id and the database it was for. */
export async function forgetCheckpoints(store: CheckpointStore): Promise<void> {
  // The database id goes first: a kill midway leaves checkpoints bound to no database, dropped on the next open.
  await store.setDatabaseId(null);
  for (const t of TABLES) {
    await store.setLastPulledAt(t.name, null);
    for (let slot = 0; slot < SLOTS; slot++) await store.setPushAttempt(t.name, null, slot);
  }
  await store.setDeviceId(null);
}

/** Moves what `from` keeps into `to` (empty), then forgets it in `from`. */
async function moveCheckpoints(from: CheckpointStore, to: CheckpointStore): Promise<void> {
  for (const t of TABLES) {
    await to.setLastPulledAt(t.name, await from.getLastPulledAt(t.name));
    for (let slot = 0; slot < SLOTS; slot++) await to.setPushAttempt(t.name, await from.getPushAttempt(t.name, slot), slot);
  }
  await to.setDeviceId(await from.getDeviceId());
  await forgetCheckpoints(from);
}

/** A marker that cannot be read (an Android Keystore entry restored without its key) is as good as none. */
async function readMarker(keyStore: KeyStore, name: string): Promise<string | null> {
  try {
    return await keyStore.get(name);
  } catch {
    return null;
  }
}

export interface BoundIdentity {
  readonly deviceId: string;
  /** True when the checkpoints were dropped (or there were none): the next sync starts from the start. */
  readonly fresh: boolean;
}

/**
 * The device id for `database`, with `checkpoints` (this user's) made its own. `unscoped` is
 * where checkpoints were kept before the client knew its user: a database from then takes them.
 */
export async function bindCheckpoints(options: {
  readonly database: LocalMigrationResult;
  readonly checkpoints: CheckpointStore;
  readonly unscoped: CheckpointStore | null;
  readonly keyStore: KeyStore | undefined;
  readonly newId: () => string;
}): Promise<BoundIdentity> {
  const { database, checkpoints, unscoped, keyStore } = options;
  const instanceId = database.instanceId;
  let bound = await checkpoints.getDatabaseId();
  // A database from before instance ids, opened for the first time since: the checkpoints of the
  // time are its own (there was one database); so are those an unscoped client wrote for it.
  const legacy = database.adoptCheckpoints;
  if (bound === null && unscoped) {
    const before = await unscoped.getDatabaseId();
    if ((before === null && legacy) || before === instanceId) {
      await moveCheckpoints(unscoped, checkpoints);
      bound = instanceId;
    }
  } else if (bound === null && legacy) {
    bound = instanceId;
  }
  const deviceId = await checkpoints.getDeviceId();
  const marker = keyStore ? installMarkerName(instanceId) : null;
  if (bound === instanceId && deviceId) {
    // Adopted from before instance ids: this install is the one that wrote them, mark it so.
    if (keyStore && marker && legacy) await keyStore.set(marker, deviceId);
    if (!keyStore || !marker || (await readMarker(keyStore, marker)) === deviceId) {
      await checkpoints.setDatabaseId(instanceId);
      return { deviceId, fresh: false };
    }
  }
  // A new database, one recreated or restored without its checkpoints, or this database and its
  // checkpoints restored onto another install (its marker is not here): start afresh. A store
  // with no database, device id nor cursor holds nothing to forget (a push attempt comes only
  // after a cursor): a first launch skips the removal of every key.
  const empty = bound === null && deviceId === null && (await Promise.all(TABLES.map((t) => checkpoints.getLastPulledAt(t.name)))).every((c) => c === null);
  if (!empty) await forgetCheckpoints(checkpoints);
  const fresh = options.newId();
  await checkpoints.setDeviceId(fresh);
  if (keyStore && marker) await keyStore.set(marker, fresh);
  await checkpoints.setDatabaseId(instanceId);
  return { deviceId: fresh, fresh: true };
}
