import type { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { ConfigError } from './config';

export type LogFormat = 'json' | 'pretty';

/**
 * How the server writes its log: JSON lines for machines (production, or output going to a file,
 * a pipe or a log collector), readable lines for a developer at a terminal. LOG_FORMAT=json|pretty
 * overrides the choice.
 */
export function chooseLogFormat(options: { readonly production: boolean; readonly isTTY: boolean; readonly override?: string | undefined }): LogFormat {
  const override = options.override?.trim().toLowerCase() ?? '';
  if (override === 'json' || override === 'pretty') return override;
  if (override !== '' && override !== 'auto') throw new ConfigError(`LOG_FORMAT must be json, pretty or auto; got "${options.override}".`);
  return !options.production && options.isTTY ? 'pretty' : 'json';
}

/**
 * The process's logger. pino-pretty is a development dependency, loaded only when chosen; an
 * install without it (npm ci --omit=dev) logs JSON lines instead of failing to start.
 */
export async function createLogger(level: string, format: LogFormat, destination?: Writable): Promise<Logger> {
  if (format === 'pretty') {
    const pretty = await import('pino-pretty').then(
      (m) => m.default,
      (e: NodeJS.ErrnoException) => {
        // Not installed (an install without devDependencies): JSON lines instead.
        if (e.code === 'ERR_MODULE_NOT_FOUND') return undefined;
        throw e;
      },
    );
    if (pretty) {
      // Synchronous, like pino's own stdout: the last line before process.exit is not lost.
      const colorize = destination === undefined;
      return pino({ level }, pretty({ colorize, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', sync: true, ...(destination ? { destination } : {}) }));
    }
  }
  return destination ? pino({ level }, destination) : pino({ level });
}
