export type { AppRouter, SubmitInput } from './router.ts';
export { appRouter } from './router.ts';
export { createApp, loadCompliantPlugins, type App, type CreateAppOptions } from './app.ts';
export { parseEnv, envSchema, type Env } from './env.ts';
