// Vite configuration of the web app. `npm run build:web` (and `npm start`'s prestart) builds
// with it into web/dist, which `otto serve` serves at `/`. For live editing, run Otto
// (`npm start`) and `npx vite web` in another terminal: the dev server proxies the API to it.
import { defineConfig } from 'vite';

const api = 'http://127.0.0.1:8800';
const proxied = ['/health', '/ready', '/openapi.json', '/me', '/users', '/usage', '/admin', '/bots', '/agents', '/conversations', '/chat'];

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  // Preact's JSX runtime, without a plugin.
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    target: 'es2022',
    // No inline polyfill script: the page's Content-Security-Policy allows only 'self' scripts.
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
  server: { proxy: Object.fromEntries(proxied.map((path) => [path, api])) },
});
