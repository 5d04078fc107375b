// Bundles the single self-contained CLI (dist/hongbao.cjs) that provisioning copies to VMs.
// It runs with plain `node` and no node_modules, except for chart rendering, which needs the
// native @napi-rs/canvas binding, chartjs-node-canvas and the chart font (@fontsource/dejavu-sans):
// the bundle loads them lazily from node_modules beside it and says so when one is missing.
// `node build.mjs --prepare` (npm's prepare step) does nothing where esbuild, a dev dependency, is
// not installed: a deploy-only install (npm ci --omit=dev) runs a bundle built elsewhere.
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';

let build;
try {
  ({ build } = await import('esbuild'));
} catch (err) {
  if (!process.argv.includes('--prepare') || err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
  const have = existsSync('dist/hongbao.cjs') ? 'dist/hongbao.cjs is left as it is' : 'there is no dist/hongbao.cjs: copy one built with npm run build';
  console.error(`build: esbuild is not installed (a deploy-only install, npm ci --omit=dev): not building; ${have}`);
  process.exit(0);
}

// The browser script of the dashboard and of report.html (Chart.js's line-chart parts and ours),
// built first and embedded in the CLI as text, so a report written anywhere is one file with it
// inline. dist/charts.js is the same text for code run from source (tsx, the tests).
const client = await build({
  entryPoints: ['controller/web/client.ts'],
  bundle: true,
  minify: true,
  format: 'iife',
  globalName: 'HB',
  target: 'es2020',
  platform: 'browser',
  write: false,
  legalComments: 'none',
  logLevel: 'warning',
});
const chartsJs = client.outputFiles[0].text;
// Inside <script>, "</script" would end it and "<!--" would change how the HTML parser reads it.
if (/<\/script|<!--/i.test(chartsJs)) throw new Error('the browser script contains "</script" or "<!--": it cannot be inlined in report.html');
mkdirSync('dist', { recursive: true });
writeFileSync('dist/charts.js', chartsJs);

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
  define: {
    __HONGBAO_CHARTS_JS__: JSON.stringify(chartsJs),
    'import.meta.url': '__hongbao_import_meta_url',
  },
});
chmodSync('dist/hongbao.cjs', 0o755);
