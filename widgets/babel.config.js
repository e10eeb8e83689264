// babel-jest turns JupyterLab's ES-module packages into CommonJS for the unit tests (jest.config.js).
module.exports = require('@jupyterlab/testing/lib/babel-config').default;
