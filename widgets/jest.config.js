// Front-end unit tests (test/*.spec.ts): JupyterLab's own jest preset from @jupyterlab/testing
// (jsdom, its DOM shims, ts-jest with tsconfig.test.json, babel for packages shipped as ES modules).
// ts-jest only transpiles (isolatedModules): `npm test` type-checks src and test with tsc first,
// once, which is much faster than ts-jest checking each file.
const jupyterlabPreset = require('@jupyterlab/testing/lib/jest-config');

const preset = jupyterlabPreset(__dirname);
// JupyterLab's own packages are ES modules too (the preset's list is for JupyterLab's repository)
const [ignore] = preset.transformIgnorePatterns;

module.exports = {
  ...preset,
  reporters: ['default'],
  testRegex: 'test/.*\\.spec\\.ts$',
  transformIgnorePatterns: [ignore.replace('(?!', '(?!@jupyterlab/|')],
};
