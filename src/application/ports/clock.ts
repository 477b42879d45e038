/** Wall-clock time in milliseconds since the epoch; injected so tests control it. */
export interface Clock {
  now(): number;
}
