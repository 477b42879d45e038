import { FetchSyncTransport } from '../../mobile/src/adapters/fetch-transport';
import { describeEachDatabase } from '../support/databases';
import { startTestServer, type TestServer } from '../support/server';
import { runHttpSyncTransportContract, runSyncTransportContract } from './sync-transport.contract';

describeEachDatabase('FetchSyncTransport against the real server', (ctx) => {
  let server: TestServer;
  let devices = 0;
  before(async () => {
    server = await startTestServer(ctx.database.db);
  });
  after(() => server.close());

  runSyncTransportContract('FetchSyncTransport', () => ({
    connect: (userId, o = {}) =>
      new FetchSyncTransport({ baseUrl: server.url, getToken: () => server.token(userId), deviceId: o.deviceId ?? `device-${++devices}`, schemaVersion: o.schemaVersion ?? 1 }),
  }));

  runHttpSyncTransportContract('FetchSyncTransport', () => ({
    baseUrl: server.url,
    token: (userId, o) => server.token(userId, o),
    create: (o) => new FetchSyncTransport(o),
  }));
});
