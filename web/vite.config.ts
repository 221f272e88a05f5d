import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

// The build is committed (dist/) and embedded in the Go binary; CI rebuilds
// it and fails when it differs, so it must be deterministic: content-hashed
// names, no timestamps, no inlined scripts (the CSP allows none).
export default defineConfig({
  plugins: [preact()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: 'es2022',
  },
  server: { proxy: { '/v1': { target: 'http://127.0.0.1:8080', ws: true }, '/oidc': 'http://127.0.0.1:8080' } },
});
