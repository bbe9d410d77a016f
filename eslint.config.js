// One ESLint configuration for the whole workspace (flat config, typescript-eslint with type
// information). Rules are chosen for the defects they catch, not for style: Prettier owns style.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/**
 * Modules allowed to read process.env: the server's env.ts and each package's configuration
 * module (`config.ts` or `settings.ts`). Test and benchmark code is exempt: it configures its
 * own harness and passes environments to the child processes it starts.
 */
export const CONFIGURATION_MODULES = [
  'apps/server/src/env.ts',
  'packages/*/src/config.ts',
  'packages/*/src/**/settings.ts',
  'packages/test-kit/src/**',
  '**/*.test.ts',
  '**/test/**',
  '**/__fixtures__/**',
  'tests/**',
  'bench/**',
  'scripts/**',
  '**/*.config.ts',
  '**/*.config.js',
];

export default tseslint.config(
  { ignores: ['**/node_modules/**', '.tools/**', '**/dist/**', '**/.turbo/**', '**/coverage/**', 'tests/fixtures/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js', '*.ts', 'scripts/*.mjs', 'apps/*/scripts/*.mjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': [
        'error',
        { checksVoidReturn: { arguments: false, attributes: false } },
      ],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-import-type-side-effects': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
      '@typescript-eslint/no-explicit-any': 'off',
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'env',
          message:
            'Read configuration in the configuration module (apps/server/src/env.ts or the package settings.ts).',
        },
      ],
      'no-empty': ['error', { allowEmptyCatch: true }],
      // ANSI escapes and JSON-pointer control characters are matched on purpose.
      'no-control-regex': 'off',
    },
  },
  { files: CONFIGURATION_MODULES, rules: { 'no-restricted-properties': 'off' } },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
