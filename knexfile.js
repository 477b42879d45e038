// The knex CLI finds this file before knexfile.ts: Node 20 cannot import TypeScript by itself, so
// tsx's loader is registered here and the configuration comes from knexfile.ts (a dev install).
import { tsImport } from 'tsx/esm/api';

export default (await tsImport('./knexfile.ts', import.meta.url)).default;
