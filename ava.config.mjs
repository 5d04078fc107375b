export default {
  files: ['test/**/*.test.ts', '!test/slow/**'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  timeout: '60s',
  concurrency: 2,
  workerThreads: false,
};
