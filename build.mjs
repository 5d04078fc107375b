// Bundles the single self-contained CLI (dist/hongbao.cjs) that provisioning copies to VMs.
// It runs with plain `node` and no node_modules, except for chart rendering, which needs the
// native @napi-rs/canvas binding, chartjs-node-canvas and the chart font (@fontsource/dejavu-sans):
// the bundle loads them lazily from node_modules beside it and says so when one is missing.
// `node build.mjs --prepare` (npm's prepare step) does nothing where esbuild, a dev dependency, is
// not installed: a deploy-only install (npm ci --omit=dev) runs a bundle built elsewhere.
import { chmodSync, existsSync, readFileSync } from 'node:fs';

let build;
try {
  ({ build } = await import('esbuild'));
} catch (err) {
  if (!process.argv.includes('--prepare') || err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
  const have = existsSync('dist/hongbao.cjs') ? 'dist/hongbao.cjs is left as it is' : 'there is no dist/hongbao.cjs: copy one built with npm run build';
  console.error(`build: esbuild is not installed (a deploy-only install, npm ci --omit=dev): not building; ${have}`);
  process.exit(0);
}

await build({
  entryPoints: ['bin/hongbao.ts'],
  outfile: 'dist/hongbao.cjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'linked',
  // import.meta.url (createRequire in charts.ts) is the bundle's own file: packages left out of the
  // bundle are found from where dist/hongbao.cjs is.
  banner: { js: '#!/usr/bin/env node\n"use strict";\nconst __hongbao_import_meta_url = require("node:url").pathToFileURL(__filename).href;' },
  external: ['canvas', '@napi-rs/canvas', 'chartjs-node-canvas'],
  logLevel: 'warning',
  // The dashboard serves Chart.js from the bundle, so the controller needs no node_modules for it.
  define: {
    __HONGBAO_CHART_UMD__: JSON.stringify(readFileSync('node_modules/chart.js/dist/chart.umd.js', 'utf8')),
    'import.meta.url': '__hongbao_import_meta_url',
  },
});
chmodSync('dist/hongbao.cjs', 0o755);
