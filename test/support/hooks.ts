import { closeDatabases } from './databases';

export const mochaHooks = {
  async afterAll(this: Mocha.Context) {
    this.timeout(30_000);
    await closeDatabases();
  },
};
