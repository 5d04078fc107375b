// Bundles the single self-contained CLI (dist/hongbao.cjs) that provisioning copies to VMs.
// It runs with plain `node` and no node_modules, except for chart rendering, which needs the
// native @napi-rs/canvas binding: the bundle loads it lazily and says so when it is missing.
import { build } from 'esbuild';
import { chmodSync, readFileSync } from 'node:fs';

await build({
  entryPoints: ['bin/hongbao.ts'],
  outfile: 'dist/hongbao.cjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'linked',
  banner: { js: '#!/usr/bin/env node' },
  external: ['canvas', '@napi-rs/canvas', 'chartjs-node-canvas'],
  logLevel: 'warning',
  // The dashboard serves Chart.js from the bundle, so the controller needs no node_modules for it.
  define: { __HONGBAO_CHART_UMD__: JSON.stringify(readFileSync('node_modules/chart.js/dist/chart.umd.js', 'utf8')) },
});
chmodSync('dist/hongbao.cjs', 0o755);
