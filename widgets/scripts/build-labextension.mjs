// Builds the prebuilt extension with @jupyterlab/builder, no Python needed: the builder wants a
// folder holding JupyterLab's core package.json, which @jupyterlab/core-meta ships as
// core.package.json. Extra arguments (e.g. --development) go to build-labextension.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const core = join(dirname(require.resolve('@jupyterlab/core-meta/package.json')), 'core.package.json');
const corePath = join('node_modules', '.rlm-core');
mkdirSync(corePath, { recursive: true });
copyFileSync(core, join(corePath, 'package.json'));
const builder = require.resolve('@jupyterlab/builder/lib/build-labextension.js');
const result = spawnSync(process.execPath, [builder, '--core-path', corePath, ...process.argv.slice(2), '.'],
  { stdio: 'inherit' });
process.exit(result.status ?? 1);
