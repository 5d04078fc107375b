// Bundles the single self-contained CLI (dist/hongbao.cjs) that provisioning copies to VMs.
// It runs with plain `node` and no node_modules, except for chart rendering, which needs the
// native @napi-rs/canvas binding: the bundle loads it lazily and says so when it is missing.
import { build } from 'esbuild';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';

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
  banner: { js: '#!/usr/bin/env node' },
  external: ['canvas', '@napi-rs/canvas', 'chartjs-node-canvas'],
  logLevel: 'warning',
  define: { __HONGBAO_CHARTS_JS__: JSON.stringify(chartsJs) },
});
chmodSync('dist/hongbao.cjs', 0o755);
