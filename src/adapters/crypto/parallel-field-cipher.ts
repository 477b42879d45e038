import { Worker } from 'node:worker_threads';
import { ok, type Result } from 'neverthrow';
import type { FieldCipher, FieldPlace, StoredField } from '../../application/ports';
import type { SyncError } from '../../domain';
import { AesGcmFieldCipher, type FieldKey, type TakenApart } from './aes-gcm-field-cipher';
import { gcmOpen, NONCE_BYTES } from './gcm-open.mjs';

type Sealed = Extract<TakenApart, { sealed: true }>;
/** A thread's answer: the texts in order, `failed` (a tag did not match), or null (the thread is gone). */
type Answer = { readonly values: string[] } | { readonly failed: true } | null;

const WORKER_URL = new URL('./decrypt-worker.mjs', import.meta.url);

/**
 * A job for a thread: one transferred buffer holding each value's nonce, body and associated data
 * back to back, and per value three numbers: its key's index in the ring and the body's and
 * associated data's lengths.
 */
function pack(values: readonly Sealed[]): { bytes: ArrayBuffer; layout: ArrayBuffer } {
  let total = 0;
  for (const v of values) total += NONCE_BYTES + v.body.length + v.aad.length;
  const bytes = new ArrayBuffer(total);
  const buf = Buffer.from(bytes);
  const layout = new Int32Array(values.length * 3);
  let off = 0;
  for (let i = 0, j = 0; i < values.length; i++, j += 3) {
    const v = values[i]!;
    buf.set(v.nonce, off);
    buf.set(v.body, (off += NONCE_BYTES));
    buf.set(v.aad, (off += v.body.length));
    off += v.aad.length;
    layout[j] = v.keyIndex;
    layout[j + 1] = v.body.length;
    layout[j + 2] = v.aad.length;
  }
  return { bytes, layout: layout.buffer };
}

/**
 * One decrypt thread, started on first use; it never keeps the process alive when idle. One that
 * dies after starting is started again on a later use; one that cannot start at all is not tried
 * again (decryption then stays on the caller's thread).
 */
class DecryptThread {
  private worker: Worker | null = null;
  private state: 'idle' | 'starting' | 'ready' | 'unavailable' = 'idle';
  private nextId = 0;
  private readonly pending = new Map<number, (answer: Answer) => void>();
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly keys: readonly Buffer[]) {}

  /** True when it can take work now; otherwise starts it (once) for the batches to come. */
  isReady(): boolean {
    if (this.state === 'idle') this.start();
    return this.state === 'ready';
  }

  /** Resolves once the thread is ready or known to be unavailable. */
  settled(): Promise<void> {
    if (this.isReady() || this.state === 'unavailable') return Promise.resolve();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  run(values: readonly Sealed[]): Promise<Answer> {
    const worker = this.worker;
    if (!worker || this.state !== 'ready') return Promise.resolve(null);
    const id = this.nextId++;
    const job = pack(values);
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      worker.ref();
      worker.postMessage({ id, ...job }, [job.bytes, job.layout]);
    });
  }

  async stop(): Promise<void> {
    const worker = this.worker;
    if (worker) await worker.terminate();
  }

  private start(): void {
    this.state = 'starting';
    // A small young generation: the thread's garbage is a page's strings, and memory is the
    // server's to keep under its target.
    const worker = new Worker(WORKER_URL, { workerData: { keys: this.keys }, resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 64 } });
    this.worker = worker;
    worker.unref();
    worker.on('message', (message: 'ready' | { id: number; values?: string[]; failed?: true }) => {
      if (message === 'ready') {
        if (this.worker === worker) this.state = 'ready';
        this.wake();
        return;
      }
      const resolve = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (this.pending.size === 0) worker.unref();
      resolve?.(message.values ? { values: message.values } : { failed: true });
    });
    // A thread that fails or is stopped hands its unfinished parts back (null: the caller decrypts them).
    const gone = () => {
      if (this.worker !== worker) return;
      this.worker = null;
      this.state = this.state === 'ready' ? 'idle' : 'unavailable';
      for (const resolve of this.pending.values()) resolve(null);
      this.pending.clear();
      this.wake();
    };
    worker.on('error', gone);
    worker.on('exit', gone);
  }

  private wake(): void {
    for (const resolve of this.waiting.splice(0)) resolve();
  }
}

export interface ParallelCipherOptions {
  /** Threads besides the caller's (default 0: all on the caller's thread). More than the cores but one gains nothing. */
  readonly threads?: number;
  /** Batches smaller than this stay on the caller's thread, where sending would cost more than it saves (default 2,000). */
  readonly minBatch?: number;
}

/**
 * AesGcmFieldCipher whose decryptAll shares a large batch (a pull page) between the caller's
 * thread and decrypt threads, which run at once. Decryption was about 40% of the server's work
 * on a large pull and each page waits for it (docs/performance.md §12). The caller's thread
 * still takes every value apart (format, key, associated data); the threads only open them.
 * Small batches, and every other call, stay on the caller's thread. Any failure, and a thread
 * that dies, sends the batch back to the caller's thread, so results and errors are exactly
 * AesGcmFieldCipher's.
 */
export class ParallelFieldCipher implements FieldCipher {
  private readonly inner: AesGcmFieldCipher;
  private readonly threads: DecryptThread[];
  private readonly minBatch: number;
  /** Batches shared with threads, and parts a thread handed back unopened (it died), so far: for tests and diagnostics. */
  sharedBatches = 0;
  partsHandedBack = 0;

  constructor(ring: readonly FieldKey[], options: ParallelCipherOptions = {}) {
    this.inner = new AesGcmFieldCipher(ring);
    this.threads = Array.from({ length: Math.max(0, options.threads ?? 0) }, () => new DecryptThread(this.inner.ring));
    this.minBatch = Math.max(2, options.minBatch ?? 2000);
  }

  get currentKeyId(): string {
    return this.inner.currentKeyId;
  }

  encrypt(plaintext: string, place: FieldPlace): string {
    return this.inner.encrypt(plaintext, place);
  }

  decrypt(stored: string, place: FieldPlace): Result<string, SyncError> {
    return this.inner.decrypt(stored, place);
  }

  isStale(stored: string): boolean {
    return this.inner.isStale(stored);
  }

  async decryptAll(items: readonly StoredField[]): Promise<Result<string[], SyncError>> {
    // Threads still starting are left out: the first large batch runs here while they start.
    const helpers = items.length >= this.minBatch ? this.threads.filter((t) => t.isReady()) : [];
    if (helpers.length === 0) return this.inner.decryptList(items);
    const out: string[] = new Array(items.length);
    const at: number[] = [];
    const sealed: Sealed[] = [];
    for (let i = 0; i < items.length; i++) {
      const taken = this.inner.takeApart(items[i]!.stored, items[i]!.place);
      if (taken.isErr()) return this.inner.decryptList(items);
      if (taken.value.sealed) {
        at.push(i);
        sealed.push(taken.value);
      } else out[i] = taken.value.plain;
    }
    this.sharedBatches++;
    const size = Math.ceil(sealed.length / (helpers.length + 1));
    const parts = helpers.map((_, k) => sealed.slice((k + 1) * size, (k + 2) * size));
    const answers = helpers.map((t, k) => t.run(parts[k]!));
    const opened = openHere(sealed, 0, size);
    if (!opened) return this.inner.decryptList(items);
    for (let j = 0; j < opened.length; j++) out[at[j]!] = opened[j]!;
    for (let k = 0; k < parts.length; k++) {
      const answer = await answers[k]!;
      if (answer === null) this.partsHandedBack++;
      const values = answer === null ? openHere(parts[k]!, 0, parts[k]!.length) : 'values' in answer ? answer.values : null;
      if (!values) return this.inner.decryptList(items);
      const base = (k + 1) * size;
      for (let j = 0; j < values.length; j++) out[at[base + j]!] = values[j]!;
    }
    return ok(out);
  }

  /**
   * Starts the decrypt threads and waits until each is ready or known not to start (tests; a
   * server need not). Returns how many are ready.
   */
  async warmUp(): Promise<number> {
    await Promise.all(this.threads.map((t) => t.settled()));
    return this.threads.filter((t) => t.isReady()).length;
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.stop()));
  }
}

/** gcmOpen of values[from, from + count) on this thread; null when a tag does not match. */
function openHere(values: readonly Sealed[], from: number, count: number): string[] | null {
  const end = Math.min(values.length, from + count);
  const out: string[] = new Array(end - from);
  try {
    for (let i = from; i < end; i++) out[i - from] = gcmOpen(values[i]!.key, values[i]!.nonce, values[i]!.body, values[i]!.aad);
  } catch {
    return null;
  }
  return out;
}
