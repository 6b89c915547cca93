"use strict";
// ESLint flat config: eslint:recommended on the package's CommonJS (Node) code; Jest globals only in test/.
const js = require("@eslint/js");
const globals = require("globals");

module.exports = [
  { ignores: ["node_modules/", "build/", "prebuilds/", "coverage/"] },
  {
    files: ["lib/**/*.js", "test/**/*.js", "examples/**/*.js", "bench/**/*.js", "scripts/**/*.js", "eslint.config.js"],
    ...js.configs.recommended,
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "commonjs",
      globals: { ...globals.node },
    },
    rules: {
      // House conventions, not suppressions: `catch (_)` marks an error deliberately ignored (each such block
      // says why), and `{ dropped, ...rest }` is how the code omits a property from a copy.
      "no-unused-vars": ["error", { caughtErrorsIgnorePattern: "^_", ignoreRestSiblings: true }],
    },
  },
  {
    files: ["test/**/*.js"],
    languageOptions: { globals: { ...globals.node, ...globals.jest } },
  },
];
