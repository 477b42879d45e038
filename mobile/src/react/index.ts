// The React bindings (`@note-sync/mobile/react`): SyncProvider and the hooks go here.
export {};
