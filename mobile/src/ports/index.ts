export type * from './sql-driver';
export type * from './checkpoint-store';
export type * from './sync-transport';
export type * from './network-monitor';
export { systemTimers, type Timers } from './timers';
export type * from './metrics-sink';
export type * from './key-store';
export type * from './live-transport';
export type * from './app-state';
