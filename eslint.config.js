// `npm run lint` (run by .ci/run): the TypeScript rules that catch real bugs, with types: promises
// nobody awaits or handles, promises passed where a callback's return is ignored, awaiting what is
// not a promise. Formatting is Prettier's job (`npm run format`), not the linter's.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', 'charts/**', 'load-tests/**', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  // Directives for rules this config does not run (kept for editors that run more) are not errors.
  { linterOptions: { reportUnusedDisableDirectives: 'off' } },
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser, parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
    },
  },
);
