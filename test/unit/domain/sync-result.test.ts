import { expect } from 'chai';
import { failureFromStatus, networkFailure, timeoutFailure, type SyncErrorCode, type SyncResultKind } from '../../../src/domain';

/** How a client classifies the server's error answers (spec §4.5, §5). */
describe('failureFromStatus', () => {
  const table: Array<[number, SyncErrorCode | undefined, SyncResultKind, boolean]> = [
    [400, 'VALIDATION_FAILED', 'SERVER_ERROR', false],
    [401, 'TOKEN_MISSING', 'AUTH_ERROR', false],
    [401, 'TOKEN_EXPIRED', 'AUTH_ERROR', false],
    [401, 'TOKEN_INVALID', 'AUTH_ERROR', false],
    [403, 'FORBIDDEN', 'AUTH_ERROR', false],
    [409, 'PUSH_ID_REUSED', 'CONFLICT', false],
    [413, 'PAYLOAD_TOO_LARGE', 'SERVER_ERROR', false],
    [426, 'SCHEMA_VERSION_UNSUPPORTED', 'SCHEMA_MISMATCH', false],
    [429, 'RATE_LIMITED', 'SERVER_ERROR', true],
    [500, 'INTERNAL', 'SERVER_ERROR', true],
    [502, undefined, 'SERVER_ERROR', true],
    [503, 'UNAVAILABLE', 'SERVER_ERROR', true],
    [507, 'QUOTA_EXCEEDED', 'SERVER_ERROR', false],
    [408, undefined, 'TIMEOUT', true],
    [504, undefined, 'TIMEOUT', true],
    [404, undefined, 'SERVER_ERROR', false],
  ];
  for (const [status, code, kind, retryable] of table) {
    it(`${status} ${code ?? '(no code)'} → ${kind}, ${retryable ? 'retryable' : 'not retryable'}`, () => {
      const failure = failureFromStatus(status, code, 'msg');
      expect(failure).to.include({ kind, retryable, message: 'msg' });
      if (code) expect(failure.code).to.equal(code);
      else expect(failure).to.not.have.property('code');
    });
  }

  it('keeps the Retry-After seconds of a 429, and adds none when absent', () => {
    expect(failureFromStatus(429, 'RATE_LIMITED', 'slow down', 7).retryAfterSeconds).to.equal(7);
    expect(failureFromStatus(429, 'RATE_LIMITED', 'slow down')).to.not.have.property('retryAfterSeconds');
  });

  it('reports network failures and timeouts as retryable', () => {
    expect(networkFailure('offline')).to.deep.equal({ kind: 'NETWORK_ERROR', retryable: true, message: 'offline' });
    expect(timeoutFailure('slow')).to.deep.equal({ kind: 'TIMEOUT', retryable: true, message: 'slow' });
  });
});
