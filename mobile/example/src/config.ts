/**
 * Where the app syncs, and as whom. Expo inlines `EXPO_PUBLIC_*` variables into the bundle when
 * Metro builds it, so set them in the shell (or mobile/example/.env) before `expo start` /
 * `expo run:*` / the bundle script:
 *
 *   EXPO_PUBLIC_SYNC_URL    the server's base URL as the phone sees it (default: the Android
 *                           emulator's alias for the computer, http://10.0.2.2:3000)
 *   EXPO_PUBLIC_SYNC_TOKEN  a bearer token, e.g. from `npm run -s token -- demo-user` at the root
 *
 * A development token in the bundle is fine for this example only; a real app gets its token
 * from its sign-in flow and hands `getToken` a function that returns the current one.
 */
export const config = {
  serverUrl: process.env.EXPO_PUBLIC_SYNC_URL || 'http://10.0.2.2:3000',
  token: process.env.EXPO_PUBLIC_SYNC_TOKEN || '',
  /** The local SQLite file op-sqlite opens in the app's databases folder. */
  databaseName: 'note-sync-example.db',
  schemaVersion: 1,
  timeoutMs: 30_000,
} as const;
