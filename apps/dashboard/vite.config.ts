import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

/** Everything is bundled into dist/ (no CDN); the server serves it at `/` with an SPA fallback. */
export default defineConfig({
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1500 },
  server: { proxy: { '/trpc': 'http://127.0.0.1:3000', '/stac': 'http://127.0.0.1:3000' } },
});
