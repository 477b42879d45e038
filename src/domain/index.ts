export * from './schema';
export * from './errors';
export * from './change-set';
export * from './conflicts';
export * from './cursor';
export * from './pull-request';
export * from './backoff';
export * from './sync-result';
